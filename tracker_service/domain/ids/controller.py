from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter, QueryParameter

from tracker_service.domain.common import ID_TYPE_PATTERN, IdType, ProjectName
from tracker_service.domain.ids.schemas import (
    AllocateIn,
    CounterIn,
    CounterList,
    CounterOut,
    NextIdOut,
    ReleaseIn,
    ReservationOut,
    ReservationPage,
    ReserveIn,
)
from tracker_service.domain.ids.service import IdRegistry
from tracker_service.web.deps import one_of, page_limit, parse_uuid, provide_ids
from tracker_service.web.params import (
    AUTOCOMMIT,
    Limit,
    Offset,
    ProjectIdQuery,
    ProjectQuery,
    alternatives,
    choices_query,
    documented_as,
    uuid_path,
)

RESERVATION_STATUSES = ("active", "lapsed", "committed", "released")
TYPE = "Artifact type, e.g. US (letters, digits, underscore; any case)"
TypeQuery = Annotated[str | None, QueryParameter(description=TYPE, pattern=ID_TYPE_PATTERN)]
RequiredType = Annotated[str, QueryParameter(description=TYPE, pattern=ID_TYPE_PATTERN)]
StatusQuery = Annotated[str | None, choices_query(RESERVATION_STATUSES, "Reservation status")]
ReservationId = Annotated[str, uuid_path("The reservation_id a reservation answered")]
ProjectPath = Annotated[str, PathParameter(description="Project name", schema_extra=documented_as(ProjectName))]
TypePath = Annotated[str, PathParameter(description=TYPE, schema_extra=documented_as(IdType))]


class IdController(Controller):
    path = "/ids"
    tags = ["ids"]
    dependencies = {"id_registry": Provide(provide_ids, sync_to_thread=False)}

    @get("/next", opt=alternatives("project", "project_id"))
    async def peek_next_id(
        self,
        id_registry: NamedDependency[IdRegistry],
        type: RequiredType,
        project: ProjectQuery = None,
        project_id: ProjectIdQuery = None,
    ) -> NextIdOut:
        """The ID the next allocation would return; allocates nothing."""
        scope = AllocateIn.model_validate({"type": type, "project_id": project or project_id})
        return await id_registry.peek(scope.project_id, scope.type)

    # One statement: runs in autocommit when the request has no Idempotency-Key (web.params).
    @post("/next", opt=AUTOCOMMIT)
    async def allocate_id(self, id_registry: NamedDependency[IdRegistry], data: JSONBody[AllocateIn]) -> NextIdOut:
        """Allocate the next ID atomically: no two callers ever get the same one."""
        return await id_registry.allocate(data.project_id, data.type)

    @post("/reserve")
    async def reserve_ids(
        self, request: Request, id_registry: NamedDependency[IdRegistry], data: JSONBody[ReserveIn]
    ) -> ReservationOut:
        """Reserve `count` contiguous IDs, never handed to anyone else."""
        ttl = data.ttl_seconds or request.app.state.settings.default_reservation_ttl_seconds
        return await id_registry.reserve(data.project_id, data.type, data.count, ttl)

    @get("/reservations")
    async def list_reservations(
        self,
        request: Request,
        id_registry: NamedDependency[IdRegistry],
        project: ProjectQuery = None,
        type: TypeQuery = None,
        status: StatusQuery = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ReservationPage:
        """Reservations, newest first; status=lapsed lists active ones past their expiry."""
        statuses = one_of("status", status, RESERVATION_STATUSES)
        return await id_registry.list_reservations(
            project,
            type.upper() if type else None,
            statuses[0] if statuses else None,
            page_limit(request, limit),
            offset,
        )

    @get("/reservations/{reservation_id:str}")
    async def get_reservation(
        self, id_registry: NamedDependency[IdRegistry], reservation_id: ReservationId
    ) -> ReservationOut:
        return await id_registry.get_reservation(parse_uuid("reservation_id", reservation_id))

    @post("/reservations/{reservation_id:str}/commit", status_code=200)
    async def commit_reservation(
        self, id_registry: NamedDependency[IdRegistry], reservation_id: ReservationId
    ) -> ReservationOut:
        """Mark every ID of the reservation as used."""
        return await id_registry.commit(parse_uuid("reservation_id", reservation_id))

    @post("/reservations/{reservation_id:str}/release", status_code=200)
    async def release_reservation(
        self,
        id_registry: NamedDependency[IdRegistry],
        reservation_id: ReservationId,
        data: JSONBody[ReleaseIn | None] = None,
    ) -> ReservationOut:
        """Return the reservation's unused IDs (all but `keep`) to the pool; they are reissued lowest first."""
        return await id_registry.release(parse_uuid("reservation_id", reservation_id), (data or ReleaseIn()).keep)

    @get("/")
    async def list_counters(
        self, id_registry: NamedDependency[IdRegistry], project: ProjectQuery = None
    ) -> CounterList:
        """Counters of the tenant: last issued value and next ID per project and type."""
        return CounterList(counters=await id_registry.counters(project))

    @put("/{project:str}/{type:str}", opt={"role": "admin"})
    async def set_counter(
        self,
        id_registry: NamedDependency[IdRegistry],
        project: ProjectPath,
        type: TypePath,
        data: JSONBody[CounterIn],
    ) -> CounterOut:
        """Admin: move a counter forward to adopt IDs that already exist elsewhere."""
        scope = AllocateIn.model_validate({"type": type, "project_id": project})
        return await id_registry.set_counter(scope.project_id, scope.type, data.last_value)
