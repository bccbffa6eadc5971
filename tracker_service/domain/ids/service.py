"""The ID registry: sequential IDs per tenant, project and type, handed out exactly once.

Each allocation is a single statement: released IDs are reissued lowest first, otherwise the
counter row is bumped with INSERT ... ON CONFLICT DO UPDATE, whose row lock serializes
concurrent allocators so IDs are distinct and gapless.

TASK IDs are the exception to "per project": they make task keys, and a key must name one task
in its tenant (`GET /tasks/TASK-001` needs no project), so TASK counters, released TASK IDs and
TASK reservations are shared by every project of a tenant. Automatic task keys come from that
counter alone, never from released IDs, and a key of that form given by hand moves the counter
past it and must be new in the tenant; both hold the counter's row lock until they commit, so
an automatic key can neither collide with a key in use nor be ambiguous.
"""

from __future__ import annotations

import re
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
from tracker_service.errors import Conflict, DuplicateKey, InvalidRequest, ReservationNotFound
from tracker_service.metrics import IDS_ALLOCATED

TENANT_WIDE_TYPES = frozenset({"TASK"})
# Stored in place of a project for tenant-wide types: never a project name (those are not empty).
TENANT_SCOPE = ""
TASK_KEY = re.compile(r"^TASK-(\d{1,12})$")


def scope_of(project: str, type_: str) -> str:
    """The project column of the registry's rows for IDs of `type_` asked for in `project`."""
    return TENANT_SCOPE if type_ in TENANT_WIDE_TYPES else project


# The counter moved forward by need.k (no row when k is 0); its row lock serializes allocators.
_BUMP = """
    bumped AS (
        INSERT INTO id_counters AS c (tenant, project, type, last_value)
        SELECT :tenant, :project, :type, k FROM need WHERE k > 0
        ON CONFLICT (tenant, project, type)
        DO UPDATE SET last_value = c.last_value + EXCLUDED.last_value, updated_at = now()
        RETURNING c.last_value AS last
    )"""
_BUMPED = "SELECT generate_series(b.last - need.k + 1, b.last) AS value FROM bumped b, need"

# n allocations at once, exactly as n single allocations in a row would give: the lowest released
# IDs first, then the counter moved forward by the rest (one row lock instead of n).
TAKE_N = f"""
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
    ), {_BUMP}"""
TAKEN = f"SELECT value FROM freed UNION ALL {_BUMPED}"

# n new numbers from the counter alone, for automatic task keys (:project is TENANT_SCOPE): batch
# task creation takes its keys in the same statement as it inserts the tasks.
BUMP_N = f"need AS (SELECT CAST(:n AS bigint) AS k), {_BUMP}"
BUMPED = _BUMPED


def id_text_sql(type_sql: str, value_sql: str) -> str:
    """format_id in SQL (TYPE-001); lpad alone would cut numbers of more than three digits."""
    padded = f"CASE WHEN {value_sql} < 100 THEN lpad({value_sql}::text, 3, '0') ELSE {value_sql}::text END"
    return f"{type_sql} || '-' || {padded}"


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
        SELECT :tenant, :log_project, 'id.allocated', id, :actor, 'ID allocated: ' || id FROM issued
    )
    SELECT value FROM issued
    """
    )
)

_NEXT_TASK_NUMBERS = HotStatement(text(f"WITH {BUMP_N} {BUMPED} ORDER BY 1"))

_RESERVE = text(
    """
    WITH bumped AS (
        INSERT INTO id_counters AS c (tenant, project, type, last_value)
        VALUES (:tenant, :scope, :type, :count)
        ON CONFLICT (tenant, project, type)
        DO UPDATE SET last_value = c.last_value + :count, updated_at = now()
        RETURNING c.last_value
    )
    INSERT INTO id_reservations (tenant, project, type, first_value, count, status, expires_at, created_by)
    SELECT :tenant, :project, :type, last_value - :count + 1, :count, 'active', now() + :ttl, :actor FROM bumped
    RETURNING *, now() AS now
    """
)

# The counter row of a scope, created at 0 if new, locked until the transaction ends.
_LOCK_COUNTER = text(
    """
    INSERT INTO id_counters AS c (tenant, project, type, last_value) VALUES (:tenant, :scope, :type, 0)
    ON CONFLICT (tenant, project, type) DO UPDATE SET last_value = c.last_value
    """
)

# Released IDs go back to the pool, except TASK IDs whose key a task holds (a key given by hand from
# the reservation): handing one out again would give out a key in use.
_RELEASE = text(
    f"""
    INSERT INTO id_free (tenant, project, type, value)
    SELECT :tenant, :scope, :type, v FROM unnest(CAST(:values AS bigint[])) AS v
    WHERE :type <> 'TASK' OR NOT EXISTS (
        SELECT 1 FROM tasks WHERE tenant = :tenant AND key = {id_text_sql("'TASK'", "v")})
    ON CONFLICT DO NOTHING
    """
)

_UNFREE = text("DELETE FROM id_free WHERE tenant = :tenant AND project = :scope AND type = :type AND value = :value")
_TASK_WITH_KEY = text("SELECT project FROM tasks WHERE tenant = :tenant AND key = :key LIMIT 1")

# The one rule for "the next ID", for GET /ids/next and the counters of GET /ids alike: the lowest
# released one, else one past the counter.
_c = id_counters.alias("c")
_COUNTERS = select(
    _c.c.project,
    _c.c.type,
    _c.c.last_value,
    func.coalesce(
        select(func.min(id_free.c.value))
        .where(id_free.c.tenant == _c.c.tenant, id_free.c.project == _c.c.project, id_free.c.type == _c.c.type)
        .scalar_subquery(),
        _c.c.last_value + 1,
    ).label("next_value"),
)


class IdRegistry:
    def __init__(self, conn: AsyncConnection, principal: Principal) -> None:
        self.conn = conn
        self.principal = principal

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    async def allocate(self, project: str, type_: str) -> NextIdOut:
        """Allocate and log the next ID in one statement."""
        params = {
            "tenant": self.tenant,
            "project": scope_of(project, type_),
            "log_project": project,
            "type": type_,
            "n": 1,
            "actor": self.principal.name,
        }
        number = (await _ALLOCATE_LOGGED.first(self.conn, params))["value"]  # type: ignore[index]
        IDS_ALLOCATED.labels("single").inc()
        return NextIdOut(next_id=format_id(type_, number), number=number, type=type_, project=project)

    async def peek(self, project: str, type_: str) -> NextIdOut:
        row = (await self.conn.execute(self._counters(scope_of(project, type_), type_))).first()
        number = row.next_value if row else 1
        return NextIdOut(next_id=format_id(type_, number), number=number, type=type_, project=project)

    async def next_task_numbers(self, n: int) -> list[int]:
        """n numbers for automatic task keys: the tenant's TASK counter alone (never released IDs,
        which a key given by hand may hold)."""
        params = {"tenant": self.tenant, "project": TENANT_SCOPE, "type": "TASK", "n": n}
        numbers = [row["value"] for row in await _NEXT_TASK_NUMBERS.all(self.conn, params)]
        IDS_ALLOCATED.labels("single").inc(n)
        return numbers

    async def take_task_key(self, key: str) -> None:
        """A task key given by hand. One of the automatic form (TASK-NNN) moves the tenant's TASK
        counter past it, so automatic keys never reach it, and must be new in the tenant, so it is
        never ambiguous. The counter's row lock, held until commit, orders this against automatic
        keys and against other such keys."""
        m = TASK_KEY.match(key)
        if m is None:
            return
        number = int(m.group(1))
        params = {"tenant": self.tenant, "scope": TENANT_SCOPE, "type": "TASK", "value": number}
        await self.conn.execute(_LOCK_COUNTER, params)
        await self._advance_to(TENANT_SCOPE, "TASK", number)
        await self.conn.execute(_UNFREE, params)  # a released ID this key holds now is not handed out again
        holder = (await self.conn.execute(_TASK_WITH_KEY, {"tenant": self.tenant, "key": key})).scalar_one_or_none()
        if holder is not None:
            raise DuplicateKey(
                f"{key} is already a task of project {holder}; a key of the form TASK-NNN names one task in "
                "the tenant: omit the key for the next free one, or choose another",
                key=key,
                project=holder,
            )

    async def set_counter(self, project: str, type_: str, last_value: int) -> CounterOut:
        scope = scope_of(project, type_)
        stmt = pg_insert(id_counters).values(tenant=self.tenant, project=scope, type=type_, last_value=last_value)
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
            current = await self._counter(scope, type_)
            raise Conflict(
                f"the {type_} counter of {_scope_name(project, type_)} is at {format_id(type_, current)}; "
                f"it only moves forward (ask for {current} or more)",
                current_value=current,
            )
        await self._event(project, "id.counter_set", f"{type_} counter set to {format_id(type_, last_value)}", type_)
        return (await self.counters(project, type_))[0]

    async def counters(self, project: str | None, type_: str | None = None) -> list[CounterOut]:
        """Counters of the tenant, or of one project (with the tenant-wide ones that serve it too)."""
        found = await self.conn.execute(
            self._counters(None if project is None else [project, TENANT_SCOPE], type_).order_by(
                _c.c.project, _c.c.type
            )
        )
        return [_counter_out(r.project, r.type, r.last_value, r.next_value) for r in found]

    async def reserve(self, project: str, type_: str, count: int, ttl_seconds: int) -> ReservationOut:
        params = {
            "tenant": self.tenant,
            "scope": scope_of(project, type_),
            "project": project,
            "type": type_,
            "count": count,
            "ttl": timedelta(seconds=ttl_seconds),
            "actor": self.principal.name,
        }
        row = (await self.conn.execute(_RESERVE, params)).one()
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
            scope = scope_of(current.project, current.type)
            params = {"tenant": self.tenant, "scope": scope, "type": current.type, "values": values}
            if current.type in TENANT_WIDE_TYPES:
                # Ordered against keys given by hand (take_task_key), which take this lock first.
                await self.conn.execute(_LOCK_COUNTER, params)
            await self.conn.execute(_RELEASE, params)
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

    def _counters(self, projects: str | list[str] | None, type_: str | None) -> Any:
        query = _COUNTERS.where(_c.c.tenant == self.tenant)
        if isinstance(projects, str):
            query = query.where(_c.c.project == projects)
        elif projects is not None:
            query = query.where(_c.c.project.in_(projects))
        return query if type_ is None else query.where(_c.c.type == type_)

    async def _advance_to(self, scope: str, type_: str, value: int) -> None:
        """Make sure the counter is at least `value` (a caller chose that ID itself)."""
        stmt = pg_insert(id_counters).values(tenant=self.tenant, project=scope, type=type_, last_value=value)
        await self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant", "project", "type"],
                set_={"last_value": func.greatest(id_counters.c.last_value, stmt.excluded.last_value)},
                where=id_counters.c.last_value < stmt.excluded.last_value,
            )
        )

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


def _scope_name(project: str, type_: str) -> str:
    return "the tenant (TASK IDs are shared by all projects)" if type_ in TENANT_WIDE_TYPES else f"project {project}"


def _counter_out(project: str, type_: str, last_value: int, next_value: int) -> CounterOut:
    tenant_wide = project == TENANT_SCOPE
    return CounterOut(
        project=None if tenant_wide else project,
        scope="tenant" if tenant_wide else "project",
        type=type_,
        last_value=last_value,
        last_id=format_id(type_, last_value) if last_value else None,
        next_id=format_id(type_, next_value),
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
