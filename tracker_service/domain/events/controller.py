from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent

from tracker_service.domain.common import OutModel
from tracker_service.domain.events.service import EVENT_AREAS, EVENT_TYPES, EventLog, check_event_type
from tracker_service.domain.events.stream import event_stream, resume_position
from tracker_service.web.deps import page_limit, provide_event_log
from tracker_service.web.params import ProjectIdQuery, ProjectQuery

Since = Annotated[datetime | None, QueryParameter(description="Only entries at or after this time")]
LogLimit = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="How many entries (default 50, capped)")]
TypeQuery = Annotated[
    str | None,
    QueryParameter(
        description="An area (task) or one event type (task.created)",
        schema_extra={"enum": [*EVENT_AREAS, *EVENT_TYPES]},
    ),
]
# TXID.ID as an event's id said (checked by events.stream.parse_token, which also bounds the numbers).
_POSITION = {"pattern": r"^(?:\s*[0-9]{1,20}\.[0-9]{1,20}\s*)?$"}
LastEventId = Annotated[
    str | None,
    HeaderParameter(name="Last-Event-ID", description="Resume after this event", schema_extra=_POSITION),
]
LastEventIdQuery = Annotated[
    str | None,
    QueryParameter(
        name="last_event_id",
        description="Same as Last-Event-ID, for clients that cannot set it",
        schema_extra=_POSITION,
    ),
]


class LogEntry(OutModel):
    timestamp: datetime
    type: str
    event: str
    project: str | None
    summary: str
    id: str | None
    actor: str | None
    event_id: int


class LogOut(OutModel):
    entries: list[LogEntry]


class LogController(Controller):
    path = "/log"
    tags = ["log"]
    dependencies = {"event_log": Provide(provide_event_log, sync_to_thread=False)}

    @get("/")
    async def activity_log(
        self,
        request: Request,
        event_log: NamedDependency[EventLog],
        project: ProjectQuery = None,
        project_id: ProjectIdQuery = None,
        type: TypeQuery = None,
        since: Since = None,
        limit: LogLimit = 50,
    ) -> LogOut:
        """What happened, newest first: task, id, handoff and key events (`type=task` or `type=task.created`)."""
        area_or_type = check_event_type(type)
        entries = await event_log.entries(project or project_id, area_or_type, since, page_limit(request, limit))
        return LogOut(entries=[LogEntry.model_validate(e) for e in entries])


@get("/events", opt={"own_connection": True}, tags=["log"])
async def live_events(
    request: Request,
    project: ProjectQuery = None,
    last_event_id: LastEventId = None,
    last_event_id_query: LastEventIdQuery = None,
) -> ServerSentEvent:
    """Server-Sent Events of the tenant's changes as they commit; reconnect with Last-Event-ID to resume."""
    state: dict[str, Any] = request.scope["state"]
    app_state = request.app.state
    resume = await resume_position(app_state.engine, last_event_id or last_event_id_query)
    release = app_state.stream_slots.take(state["principal"])
    return ServerSentEvent(
        event_stream(app_state.engine, app_state.hub, state["principal"], project, resume, release),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
