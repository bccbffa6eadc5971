"""The ID registry: sequential IDs per tenant, project and type, handed out exactly once.

Each allocation is a single statement: released IDs are reissued lowest first, otherwise the
counter row is bumped with INSERT ... ON CONFLICT DO UPDATE, whose row lock serializes
concurrent allocators so IDs are distinct and gapless.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import id_counters, id_free, id_reservations
from tracker_service.domain.common import format_id
from tracker_service.domain.events.service import record
from tracker_service.domain.ids.schemas import CounterOut, NextIdOut, ReservationOut, ReservationPage
from tracker_service.domain.keys.service import Principal
from tracker_service.errors import Conflict, InvalidRequest, ReservationNotFound
from tracker_service.metrics import IDS_ALLOCATED

# n allocations at once, exactly as n single allocations in a row would give: the lowest released
# IDs first, then the counter moved forward by the rest (one row lock instead of n). Also used by
# batch task creation, which takes its keys in the same statement as it inserts the tasks.
TAKE_N = """
    freed AS (
        DELETE FROM id_free
        WHERE (tenant, project, type, value) IN (
            SELECT tenant, project, type, value FROM id_free
            WHERE tenant = :tenant AND project = :project AND type = :type
            ORDER BY value LIMIT :n
            FOR UPDATE SKIP LOCKED)
        RETURNING value
    ), need AS (
        SELECT CAST(:n AS bigint) - count(*) AS k FROM freed
    ), bumped AS (
        INSERT INTO id_counters AS c (tenant, project, type, last_value)
        SELECT :tenant, :project, :type, k FROM need WHERE k > 0
        ON CONFLICT (tenant, project, type)
        DO UPDATE SET last_value = c.last_value + EXCLUDED.last_value, updated_at = now()
        RETURNING c.last_value AS last
    )"""
TAKEN = """
    SELECT value FROM freed
    UNION ALL
    SELECT generate_series(b.last - need.k + 1, b.last) FROM bumped b, need"""


def id_text_sql(type_sql: str, value_sql: str) -> str:
    """format_id in SQL (TYPE-001); lpad alone would cut numbers of more than three digits."""
    padded = f"CASE WHEN {value_sql} < 100 THEN lpad({value_sql}::text, 3, '0') ELSE {value_sql}::text END"
    return f"{type_sql} || '-' || {padded}"


_ALLOCATE_MANY = HotStatement(text(f"WITH {TAKE_N} {TAKEN} ORDER BY 1"))

# One allocation and its activity-log row in one statement (the route runs it in autocommit, so the
# counter's row lock is held for this statement only). The SQL id text is format_id's: TYPE-001.
_ALLOCATE_LOGGED = HotStatement(
    text(
        f"""
    WITH {TAKE_N}, issued AS (
        SELECT value, {id_text_sql(":type", "value")} AS id
        FROM ({TAKEN}) v
    ), logged AS (
        INSERT INTO events (tenant, project, type, entity_id, actor, summary)
        SELECT :tenant, :project, 'id.allocated', id, :actor, 'ID allocated: ' || id FROM issued
    )
    SELECT value FROM issued
    """
    )
)

_LOCK_COUNTERS = HotStatement(
    text(
        """
    INSERT INTO id_counters AS c (tenant, project, type, last_value)
    SELECT :tenant, p, :type, 0 FROM unnest(CAST(:projects AS text[])) AS p ORDER BY p
    ON CONFLICT (tenant, project, type) DO UPDATE SET last_value = c.last_value
    """
    )
)

_PEEK = text(
    """
    SELECT COALESCE(
        (SELECT min(value) FROM id_free WHERE tenant = :tenant AND project = :project AND type = :type),
        (SELECT last_value + 1 FROM id_counters WHERE tenant = :tenant AND project = :project AND type = :type),
        1)
    """
)

_RESERVE = text(
    """
    WITH bumped AS (
        INSERT INTO id_counters AS c (tenant, project, type, last_value)
        VALUES (:tenant, :project, :type, :count)
        ON CONFLICT (tenant, project, type)
        DO UPDATE SET last_value = c.last_value + :count, updated_at = now()
        RETURNING c.last_value
    )
    INSERT INTO id_reservations (tenant, project, type, first_value, count, status, expires_at, created_by)
    SELECT :tenant, :project, :type, last_value - :count + 1, :count, 'active', now() + :ttl, :actor FROM bumped
    RETURNING *, now() AS now
    """
)


class IdRegistry:
    def __init__(self, conn: AsyncConnection, principal: Principal) -> None:
        self.conn = conn
        self.principal = principal

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    async def allocate_number(self, project: str, type_: str) -> int:
        """One number for the caller's own use (a task key), logged by the caller."""
        return (await self.allocate_numbers(project, type_, 1))[0]

    async def allocate_numbers(self, project: str, type_: str, n: int) -> list[int]:
        """n numbers, ascending, as n allocate_number calls in a row would return them."""
        params = {"tenant": self.tenant, "project": project, "type": type_, "n": n}
        numbers = [row["value"] for row in await _ALLOCATE_MANY.all(self.conn, params)]
        IDS_ALLOCATED.labels("single").inc(n)
        return numbers

    async def lock_counters(self, projects: list[str], type_: str) -> None:
        """Hold the counters of several projects (created at 0 if new) for this transaction, taken in
        name order: two batches that allocate in several projects then cannot deadlock each other."""
        await _LOCK_COUNTERS.run(self.conn, {"tenant": self.tenant, "projects": sorted(projects), "type": type_})

    async def allocate(self, project: str, type_: str) -> NextIdOut:
        """Allocate and log the next ID in one statement."""
        params = {"tenant": self.tenant, "project": project, "type": type_, "n": 1, "actor": self.principal.name}
        number = (await _ALLOCATE_LOGGED.first(self.conn, params))["value"]  # type: ignore[index]
        IDS_ALLOCATED.labels("single").inc()
        return NextIdOut(next_id=format_id(type_, number), number=number, type=type_, project=project)

    async def peek(self, project: str, type_: str) -> NextIdOut:
        params = {"tenant": self.tenant, "project": project, "type": type_}
        number = (await self.conn.execute(_PEEK, params)).scalar_one()
        return NextIdOut(next_id=format_id(type_, number), number=number, type=type_, project=project)

    async def advance_to(self, project: str, type_: str, value: int) -> None:
        """Make sure the counter is at least `value` (a caller chose that ID itself)."""
        stmt = pg_insert(id_counters).values(tenant=self.tenant, project=project, type=type_, last_value=value)
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant", "project", "type"],
                set_={"last_value": func.greatest(id_counters.c.last_value, stmt.excluded.last_value)},
                where=id_counters.c.last_value < stmt.excluded.last_value,
            )
        )

    async def set_counter(self, project: str, type_: str, last_value: int) -> CounterOut:
        stmt = pg_insert(id_counters).values(tenant=self.tenant, project=project, type=type_, last_value=last_value)
        row = (
            await self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant", "project", "type"],
                    set_={"last_value": stmt.excluded.last_value, "updated_at": func.now()},
                    where=id_counters.c.last_value <= stmt.excluded.last_value,
                ).returning(id_counters.c.last_value)
            )
        ).first()
        if row is None:
            current = await self._counter(project, type_)
            raise Conflict(
                f"the {type_} counter of project {project} is at {format_id(type_, current)}; "
                f"it only moves forward (ask for {current} or more)",
                current_value=current,
            )
        await self._event(project, "id.counter_set", f"{type_} counter set to {format_id(type_, last_value)}", type_)
        return _counter_out(project, type_, last_value)

    async def counters(self, project: str | None) -> list[CounterOut]:
        cond = [id_counters.c.tenant == self.tenant]
        if project is not None:
            cond.append(id_counters.c.project == project)
        rows = await self.conn.execute(
            select(id_counters.c.project, id_counters.c.type, id_counters.c.last_value)
            .where(*cond)
            .order_by(id_counters.c.project, id_counters.c.type)
        )
        return [_counter_out(r.project, r.type, r.last_value) for r in rows]

    async def reserve(self, project: str, type_: str, count: int, ttl_seconds: int) -> ReservationOut:
        row = (
            await self.conn.execute(
                _RESERVE,
                {
                    "tenant": self.tenant,
                    "project": project,
                    "type": type_,
                    "count": count,
                    "ttl": timedelta(seconds=ttl_seconds),
                    "actor": self.principal.name,
                },
            )
        ).one()
        IDS_ALLOCATED.labels("reserved").inc(count)
        out = _reservation_out(row, row.now)
        await self._event(
            project,
            "id.reserved",
            f"{count} IDs reserved: {out.reserved_ids[0]}..{out.reserved_ids[-1]}",
            str(out.reservation_id),
        )
        return out

    async def get_reservation(self, reservation_id: UUID) -> ReservationOut:
        row = (
            await self.conn.execute(
                select(id_reservations, func.now().label("now")).where(
                    id_reservations.c.id == reservation_id, id_reservations.c.tenant == self.tenant
                )
            )
        ).first()
        if row is None:
            raise ReservationNotFound(f"reservation {reservation_id} not found")
        return _reservation_out(row, row.now)

    async def commit(self, reservation_id: UUID) -> ReservationOut:
        row = await self._close(reservation_id, "committed", released=[])
        if row is None:
            current = await self.get_reservation(reservation_id)
            if current.status == "committed":
                return current
            raise Conflict(
                f"reservation {reservation_id} was released; its IDs went back to the pool",
                current_status=current.status,
            )
        out = _reservation_out(row, row.now)
        await self._event(
            out.project, "id.committed", f"reservation committed: {len(out.reserved_ids)} IDs", str(reservation_id)
        )
        return out

    async def release(self, reservation_id: UUID, keep: list[str]) -> ReservationOut:
        current = await self.get_reservation(reservation_id)  # the range itself never changes
        unknown = sorted(set(keep) - set(current.reserved_ids))
        if unknown:
            raise InvalidRequest(
                f"keep lists IDs that are not in this reservation: {', '.join(unknown)}",
                reserved_ids=current.reserved_ids,
            )
        values = [current.first_value + i for i, rid in enumerate(current.reserved_ids) if rid not in set(keep)]
        row = await self._close(reservation_id, "released", released=values)
        if row is None:
            current = await self.get_reservation(reservation_id)
            if current.status == "released":
                return current
            raise Conflict(
                f"reservation {reservation_id} is committed; its IDs are in use and cannot be released",
                current_status=current.status,
            )
        if values:
            await self.conn.execute(
                pg_insert(id_free).on_conflict_do_nothing(),
                [{"tenant": self.tenant, "project": current.project, "type": current.type, "value": v} for v in values],
            )
        out = _reservation_out(row, row.now)
        await self._event(
            out.project, "id.released", f"reservation released: {len(values)} IDs returned", str(reservation_id)
        )
        return out

    async def list_reservations(
        self, project: str | None, type_: str | None, status: str | None, limit: int, offset: int
    ) -> ReservationPage:
        r = id_reservations
        cond = [r.c.tenant == self.tenant]
        if project is not None:
            cond.append(r.c.project == project)
        if type_ is not None:
            cond.append(r.c.type == type_)
        if status == "lapsed":
            cond += [r.c.status == "active", r.c.expires_at < func.now()]
        elif status == "active":
            cond += [r.c.status == "active", r.c.expires_at >= func.now()]
        elif status is not None:
            cond.append(r.c.status == status)
        total = (await self.conn.execute(select(func.count()).select_from(r).where(*cond))).scalar_one()
        rows = await self.conn.execute(
            select(r, func.now().label("now")).where(*cond).order_by(r.c.created_at.desc()).limit(limit).offset(offset)
        )
        items = [_reservation_out(row, row.now) for row in rows]
        return ReservationPage(reservations=items, total=total, has_more=offset + len(items) < total)

    async def _close(self, reservation_id: UUID, status: str, released: list[int]) -> Any:
        r = id_reservations
        return (
            await self.conn.execute(
                update(r)
                .where(and_(r.c.id == reservation_id, r.c.tenant == self.tenant, r.c.status == "active"))
                .values(status=status, closed_at=func.now(), released_values=released or None)
                .returning(r, func.now().label("now"))
            )
        ).first()

    async def _counter(self, project: str, type_: str) -> int:
        return (
            await self.conn.execute(
                select(id_counters.c.last_value).where(
                    id_counters.c.tenant == self.tenant, id_counters.c.project == project, id_counters.c.type == type_
                )
            )
        ).scalar_one_or_none() or 0

    async def _event(self, project: str, type_: str, summary: str, entity_id: object) -> None:
        await record(
            self.conn, self.tenant, type_, summary, project=project, entity_id=entity_id, actor=self.principal.name
        )


def _counter_out(project: str, type_: str, last_value: int) -> CounterOut:
    return CounterOut(
        project=project,
        type=type_,
        last_value=last_value,
        last_id=format_id(type_, last_value) if last_value else None,
        next_id=format_id(type_, last_value + 1),
    )


def _reservation_out(row: Any, now: Any) -> ReservationOut:
    status = "lapsed" if row.status == "active" and row.expires_at < now else row.status
    ids = [format_id(row.type, row.first_value + i) for i in range(row.count)]
    released = {format_id(row.type, v) for v in (row.released_values or [])}
    return ReservationOut(
        reservation_id=row.id,
        project=row.project,
        type=row.type,
        status=status,
        reserved_ids=ids,
        released_ids=[i for i in ids if i in released],
        first_value=row.first_value,
        expires_at=row.expires_at,
        created_at=row.created_at,
        closed_at=row.closed_at,
    )
