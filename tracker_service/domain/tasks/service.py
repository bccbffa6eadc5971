"""Task rules. Races are settled in SQL: claims with FOR UPDATE SKIP LOCKED, changes under a row lock."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Interval,
    Row,
    Text,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import events, handoffs, task_totals, tasks
from tracker_service.db.models import task_dependencies as deps
from tracker_service.domain.common import format_id
from tracker_service.domain.events.service import event_values, record
from tracker_service.domain.ids.service import BUMP_N, BUMPED, TASK_KEY, TENANT_SCOPE, IdRegistry, id_text_sql
from tracker_service.domain.keys.service import Principal
from tracker_service.domain.tasks.schemas import (
    BatchOut,
    ClaimIn,
    HeartbeatIn,
    NextTaskOut,
    StatusIn,
    TaskFields,
    TaskIn,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskSummary,
)
from tracker_service.domain.tasks.states import TRANSITIONS, transition_hint
from tracker_service.domain.tasks.status_change import change_status_at_once
from tracker_service.errors import (
    AmbiguousKey,
    Conflict,
    DependencyCycle,
    DuplicateKey,
    InvalidRequest,
    InvalidTransition,
    TaskNotFound,
)
from tracker_service.metrics import CLAIMS, IDS_ALLOCATED
from tracker_service.settings import Settings

_dep = tasks.alias("dep")
_cand = tasks.alias("cand")

_depends_on = (
    select(
        func.coalesce(
            func.jsonb_agg(func.jsonb_build_object("id", _dep.c.id, "key", _dep.c.key, "status", _dep.c.status)),
            text("'[]'::jsonb"),
        )
    )
    .select_from(deps.join(_dep, _dep.c.id == deps.c.depends_on_id))
    .where(deps.c.task_id == tasks.c.id)
    .correlate(tasks)
    .scalar_subquery()
    .label("depends_on")
)

TASK_COLUMNS = [c for c in tasks.c if c.name not in ("tenant", "priority_rank")] + [_depends_on]
SUMMARY_COLUMNS = [tasks.c[n] for n in TaskSummary.model_fields if n != "task_id"] + [tasks.c.key.label("task_id")]
ORDER = (tasks.c.priority_rank, tasks.c.created_at, tasks.c.id)


# A lapsed lease hands the task back: pending, unassigned, logged with who held it.
_LAPSE = text(
    """
    WITH lapsed AS (
        UPDATE tasks t SET status = 'pending', assigned_to = NULL, lease_expires_at = NULL, updated_at = now()
        FROM (
            SELECT id, assigned_to FROM tasks
            WHERE status = 'in_progress' AND lease_expires_at < now()
            ORDER BY lease_expires_at LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ) old
        WHERE t.id = old.id
        RETURNING t.id, t.tenant, t.project, t.key, old.assigned_to
    )
    INSERT INTO events (tenant, project, type, entity_id, actor, summary)
    SELECT tenant, project, 'task.lease_expired', id::text, 'tracker',
           'Lease lapsed: ' || key || ' (held by ' || coalesce(assigned_to, 'nobody') || ') is pending again'
    FROM lapsed
    RETURNING entity_id
    """
)


async def lapse_expired_leases(conn: AsyncConnection) -> int:
    """Return every task whose lease lapsed to pending (used by the periodic sweep)."""
    return len((await conn.execute(_LAPSE)).all())


# The triggers of migration 0006 append rows for every task added, removed or moved to another
# status; this folds the rows of each (project, status) into one. Rows committed meanwhile are not
# in the DELETE's snapshot and stay.
FOLD_TASK_TOTALS = text(
    """
    WITH scattered AS (
        SELECT tenant, project, status FROM task_totals GROUP BY 1, 2, 3 HAVING count(*) > 1 OR sum(delta) = 0
    ), gone AS (
        DELETE FROM task_totals t USING scattered s
        WHERE t.tenant = s.tenant AND t.project = s.project AND t.status = s.status
        RETURNING t.tenant, t.project, t.status, t.delta
    )
    INSERT INTO task_totals (tenant, project, status, delta)
    SELECT tenant, project, status, sum(delta) FROM gone GROUP BY 1, 2, 3 HAVING sum(delta) <> 0
    """
)


def _duplicate(project: str, key: str) -> DuplicateKey:
    detail = f"project {project} already has a task {key}; pick another key or omit it"
    return DuplicateKey(detail, key=key, project=project)


async def fold_task_totals(conn: AsyncConnection) -> None:
    await conn.execute(FOLD_TASK_TOTALS)


def _ready(candidate: Any) -> Any:
    """No dependency of the candidate is unfinished."""
    return ~exists().where(
        deps.c.task_id == candidate.c.id, deps.c.depends_on_id == _dep.c.id, _dep.c.status != "completed"
    )


def _next_task(typed: bool, status: str | None = None) -> Any:
    """The rule for the next task, shared by peek and claim: highest priority, then oldest, among
    tasks whose dependencies are completed and that are unassigned or assigned to the asking agent.
    Bind names differ from column names because SQLAlchemy reserves those in UPDATE statements."""
    c = _cand
    cond = [
        c.c.tenant == bindparam("b_tenant"),
        c.c.project == bindparam("b_project"),
        # The claim's status is a constant: PostgreSQL's plan then uses the partial pending index.
        c.c.status == (bindparam("b_status") if status is None else status),
        or_(c.c.assigned_to.is_(None), c.c.assigned_to == bindparam("b_agent")),
        _ready(c),
    ]
    if typed:
        cond.append(c.c.type == bindparam("b_type"))
    return select(c.c.id).where(*cond).order_by(c.c.priority_rank, c.c.created_at, c.c.id).limit(1)


def _claim_statement(typed: bool) -> Any:
    """The claim and its activity-log row, one statement: take the next task, skipping rows other
    claimers hold locked (the route runs it in autocommit, so nothing else waits on it)."""
    chosen = _next_task(typed, "pending").with_for_update(skip_locked=True, of=_cand).scalar_subquery()
    claimed = (
        update(tasks)
        .where(tasks.c.id == chosen)
        .values(
            status="in_progress",
            assigned_to=bindparam("b_agent"),
            lease_expires_at=func.now() + bindparam("b_lease", type_=Interval),
            updated_at=func.now(),
        )
        .returning(*TASK_COLUMNS)
        .cte("claimed")
    )
    summary = literal("Task claimed by ") + bindparam("b_agent") + ": " + claimed.c.key + " " + claimed.c.title
    logged = insert(events).from_select(
        ["tenant", "project", "type", "entity_id", "actor", "summary"],
        select(
            bindparam("b_tenant"),
            claimed.c.project,
            literal("task.claimed"),
            cast(claimed.c.id, Text),
            bindparam("b_agent"),
            func.left(summary, 300),
        ),
    )
    return select(claimed).add_cte(logged.cte("logged"))


# Columns a new task takes from its request as given; the rest are defaults or derived below.
_GIVEN = [name for name in TaskFields.model_fields if name not in ("depends_on", "priority", "status", "tags")]
_GIVEN_SET = {*_GIVEN, "priority", "status", "tags"}

# A batch in one statement: its automatic keys taken from the tenant's TASK counter, the rows
# inserted and each logged, in the order of the batch. Items come as one JSON array read with the
# table's own row type; items without a key take the counter's numbers in order. A key already used
# is skipped (DO NOTHING): the caller sees fewer rows back, raises, and the request's transaction
# undoes the rest.
_CREATE_MANY = HotStatement(
    text(
        f"""
        WITH {BUMP_N}, numbers AS (
            SELECT value, row_number() OVER (ORDER BY value) AS k FROM ({BUMPED}) v
        ), items AS (
            SELECT r.*, row_number() OVER (PARTITION BY r.key IS NULL ORDER BY r.ordinality) AS k
            FROM jsonb_populate_recordset(NULL::tasks, CAST(:items AS jsonb)) WITH ORDINALITY AS r
        ), keyed AS (
            SELECT i.*, coalesce(i.key, {id_text_sql("'TASK'", "n.value")}) AS new_key
            FROM items i LEFT JOIN numbers n ON i.key IS NULL AND n.k = i.k
        ), inserted AS (
            INSERT INTO tasks (tenant, project, key, priority, status, tags, completed_at, lease_expires_at,
                               {", ".join(_GIVEN)})
            SELECT :tenant, project, new_key, coalesce(priority, 'medium'), coalesce(status, 'pending'),
                   coalesce(tags, '{{}}'),
                   CASE WHEN status = 'completed' THEN now() END,
                   CASE WHEN status = 'in_progress' THEN now() + CAST(:lease AS interval) END,
                   {", ".join(_GIVEN)}
            FROM keyed ORDER BY ordinality
            ON CONFLICT ON CONSTRAINT tasks_key_unique DO NOTHING
            RETURNING id, project, key, title
        ), logged AS (
            INSERT INTO events (tenant, project, type, entity_id, actor, summary)
            SELECT :tenant, t.project, 'task.created', t.id::text, :actor,
                   left('Task created: ' || t.key || ' ' || t.title, 300)
            FROM inserted t JOIN keyed b ON b.project = t.project AND b.new_key = t.key
            ORDER BY b.ordinality
        )
        SELECT b.project, b.new_key AS key, t.id
        FROM keyed b LEFT JOIN inserted t ON t.project = b.project AND t.key = b.new_key
        ORDER BY b.ordinality
        """
    )
)

# Built once: the claim is the hot path, and rebuilding statements per request cost ~17% of the CPU.
_PEEK = select(*TASK_COLUMNS).where(tasks.c.id == _next_task(typed=False).scalar_subquery())
_CLAIM = {typed: HotStatement(_claim_statement(typed)) for typed in (False, True)}


class TaskService:
    def __init__(self, conn: AsyncConnection, principal: Principal, settings: Settings) -> None:
        self.conn = conn
        self.principal = principal
        self.settings = settings
        self.tenant = principal.tenant

    # --- reads -------------------------------------------------------------------------

    async def get(self, ref: str, project: str | None = None) -> TaskOut:
        return await self._fetch(await self._resolve(ref, project))

    async def list(
        self,
        *,
        project: str | None,
        statuses: list[str],
        assigned_to: str | None,
        priority: str | None,
        tag: str | None,
        limit: int,
        offset: int,
    ) -> TaskPage:
        cond = [tasks.c.tenant == self.tenant]
        if project is not None:
            cond.append(tasks.c.project == project)
        if statuses:
            cond.append(tasks.c.status.in_(statuses))
        if assigned_to is not None:
            cond.append(tasks.c.assigned_to == assigned_to)
        if priority is not None:
            cond.append(tasks.c.priority == priority)
        if tag is not None:
            cond.append(tasks.c.tags.contains([tag]))
        if assigned_to is not None or priority is not None or tag is not None:
            counted = select(func.count()).select_from(tasks).where(*cond)
        else:
            # By project and status only: the sum of the triggers' deltas, not a count of the rows.
            kept = [task_totals.c.tenant == self.tenant]
            if project is not None:
                kept.append(task_totals.c.project == project)
            if statuses:
                kept.append(task_totals.c.status.in_(statuses))
            counted = select(func.coalesce(func.sum(task_totals.c.delta), 0)).where(*kept)
        total = int((await self.conn.execute(counted)).scalar_one())
        rows = await self.conn.execute(
            select(*SUMMARY_COLUMNS).where(*cond).order_by(*ORDER).limit(limit).offset(offset)
        )
        items = [TaskSummary.model_validate(dict(r._mapping)) for r in rows]
        return TaskPage(tasks=items, total=total, has_more=offset + len(items) < total)

    async def peek_next(self, project: str, status: str, agent: str | None) -> NextTaskOut:
        """The task a claim would take now (reads only)."""
        params = {"b_tenant": self.tenant, "b_project": project, "b_status": status, "b_agent": agent}
        row = (await self.conn.execute(_PEEK, params)).first()
        if row is None:
            return NextTaskOut(task=None, hint=await self._nothing_ready(project, status))
        return NextTaskOut(task=TaskOut.from_row(row))

    async def _nothing_ready(self, project: str, status: str) -> str:
        """Why no task is there: a project that never had one (often a typo), or what its tasks wait on."""
        found = await self.conn.execute(
            select(task_totals.c.project, task_totals.c.status, func.sum(task_totals.c.delta))
            .where(task_totals.c.tenant == self.tenant)
            .group_by(task_totals.c.project, task_totals.c.status)
            .having(func.sum(task_totals.c.delta) > 0)
        )
        counts: dict[str, dict[str, int]] = {}
        for name, state, n in found:
            counts.setdefault(name, {})[state] = int(n)
        mine = counts.get(project)
        if not mine:
            others = sorted(counts)[:10]
            known = f"projects with tasks: {', '.join(others)}" if others else "this tenant has no tasks at all"
            return f"project {project!r} has no tasks; check its name ({known})"
        summary = ", ".join(f"{n} {state}" for state, n in sorted(mine.items()))
        if mine.get(status):
            return (
                f"no {status} task of project {project} is ready ({summary}): the {status} ones wait on "
                "dependencies, are assigned to other agents, or are of another type"
            )
        return f"project {project} has no {status} task ({summary})"

    # --- writes ------------------------------------------------------------------------

    async def create(self, data: TaskIn) -> TaskOut:
        task_id, _ = await self._insert(data)
        return await self._fetch(task_id)

    async def create_batch(self, items: list[TaskIn]) -> BatchOut:
        # One transaction (the request's): any failure leaves nothing behind.
        given = [item.key for item in items if item.key is not None and TASK_KEY.match(item.key)]
        if len(set(given)) < len(given):
            repeated = next(key for key in given if given.count(key) > 1)
            raise DuplicateKey(f"the batch gives the key {repeated} twice; TASK-NNN keys name one task in the tenant",
                               key=repeated)
        if self._bulk_safe(items):
            created = await self._insert_many(items)
        else:
            # Items that depend on earlier items, or that mix hand-picked TASK-NNN keys with automatic
            # ones, are created one by one, in order, so each sees the ones before it.
            created = [await self._insert(item) for item in items]
        return BatchOut(
            success=True, tasks_added=len(created), task_ids=[k for _, k in created], ids=[i for i, _ in created]
        )

    async def claim_next(self, data: ClaimIn) -> NextTaskOut:
        lease = timedelta(seconds=data.lease_seconds or self.settings.default_lease_seconds)
        params = {
            "b_tenant": self.tenant,
            "b_project": data.project,
            "b_agent": data.agent,
            "b_lease": lease,
        }
        if data.type is not None:
            params["b_type"] = data.type
        row = await _CLAIM[data.type is not None].first(self.conn, params)
        CLAIMS.labels("claimed" if row else "empty").inc()
        if row is None:
            return NextTaskOut(task=None, hint=await self._nothing_ready(data.project, "pending"))
        return NextTaskOut(task=TaskOut.from_mapping(row))

    async def set_status(self, ref: str, project: str | None, data: StatusIn) -> TaskOut:
        fields = data.model_dump(exclude_unset=True)
        lease = timedelta(seconds=self.settings.default_lease_seconds)
        row = await change_status_at_once(
            self.conn,
            tenant=self.tenant,
            actor=self.principal.name,
            ref=ref,
            project=project,
            fields=fields,
            lease=lease,
        )
        if row is not None:
            return TaskOut.from_mapping(row)
        # Nothing changed: the general path re-reads under a lock and says why (or does it, if the
        # task moved on since).
        return await self._change(ref, project, fields)

    async def heartbeat(self, ref: str, project: str | None, data: HeartbeatIn) -> TaskOut:
        """Extend the lease of a task the agent holds."""
        task_id = await self._resolve(ref, project)
        lease = timedelta(seconds=data.lease_seconds or self.settings.default_lease_seconds)
        row = (
            await self.conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == "in_progress", tasks.c.assigned_to == data.agent)
                .values(lease_expires_at=func.now() + lease)
                .returning(*TASK_COLUMNS)
            )
        ).first()
        if row is not None:
            return TaskOut.from_row(row)
        current = await self._fetch(task_id)
        if current.status != "in_progress":
            raise Conflict(
                f"task {current.key} is {current.status}, not in_progress; there is no lease to extend",
                current_status=current.status,
            )
        raise Conflict(
            f"task {current.key} is held by {current.assigned_to}, not {data.agent}", assigned_to=current.assigned_to
        )

    async def cancel(self, ref: str) -> TaskOut:
        """Cancel unfinished work; finished work is a conflict, a repeat is a no-op."""
        current = await self._lock(ref, None)
        if current.status in ("completed", "failed"):
            raise Conflict(
                f"task {current.key} is {current.status}; finished work cannot be cancelled",
                current_status=current.status,
            )
        return await self._change(ref, None, {"status": "cancelled"})

    async def patch(self, ref: str, project: str | None, data: TaskPatch) -> TaskOut:
        return await self._change(ref, project, data.model_dump(exclude_unset=True))

    async def delete(self, ref: str, project: str | None) -> None:
        task_id = await self._resolve(ref, project)
        row = (
            await self.conn.execute(
                delete(tasks)
                .where(tasks.c.id == task_id, tasks.c.tenant == self.tenant)
                .returning(tasks.c.id, tasks.c.key, tasks.c.project, tasks.c.title)
            )
        ).first()
        if row is None:
            raise TaskNotFound(f"Task not found: {ref}", ref=ref)
        await self._event("task.deleted", f"Task deleted: {row.key} {row.title}", row.project, row.id)

    # --- internals ---------------------------------------------------------------------

    async def _check_handoff(self, handoff_id: UUID | None) -> None:
        """A task may only point at a handoff of its own tenant."""
        if handoff_id is None:
            return
        found = await self.conn.execute(
            select(handoffs.c.id).where(handoffs.c.id == handoff_id, handoffs.c.tenant == self.tenant)
        )
        if found.first() is None:
            raise InvalidRequest(
                f"related_handoff_id: handoff {handoff_id} not found",
                errors=[{"field": "related_handoff_id", "message": "no such handoff"}],
            )

    @staticmethod
    def _bulk_safe(items: list[TaskIn]) -> bool:
        """True when creating the items in one statement gives exactly what creating them in order would."""
        if any(item.depends_on for item in items):
            return False
        automatic = any(item.key is None for item in items)
        return not (automatic and any(item.key is not None and TASK_KEY.match(item.key) for item in items))

    async def _insert_many(self, items: list[TaskIn]) -> list[tuple[UUID, str]]:
        """Create tasks in one statement (keys, rows and log rows), not three per task."""
        for handoff_id in dict.fromkeys(item.related_handoff_id for item in items if item.related_handoff_id):
            await self._check_handoff(handoff_id)
        ids = IdRegistry(self.conn, self.principal)
        for item in items:
            if item.key is not None:
                await ids.take_task_key(item.key)
        rows = [
            {
                "project": item.project,
                "key": item.key,
                **item.model_dump(mode="json", include=_GIVEN_SET, exclude_none=True),
            }
            for item in items
        ]
        params = {
            "tenant": self.tenant,
            "actor": self.principal.name,
            "project": TENANT_SCOPE,
            "type": "TASK",
            "n": sum(1 for row in rows if row["key"] is None),
            "lease": timedelta(seconds=self.settings.default_lease_seconds),
            "items": json.dumps(rows),
        }
        created = await _CREATE_MANY.all(self.conn, params)
        IDS_ALLOCATED.labels("single").inc(params["n"])
        seen: set[tuple[str, str]] = set()
        for row in created:
            ref = (row["project"], row["key"])
            if row["id"] is None or ref in seen:
                raise _duplicate(*ref)
            seen.add(ref)
        return [(row["id"], row["key"]) for row in created]

    def _row(self, data: TaskIn, key: str) -> dict[str, Any]:
        """The tasks row of a new task (without dependencies)."""
        status = data.status or "pending"
        values = data.model_dump(exclude={"project", "key", "depends_on", "status"}, exclude_none=True)
        values.update(
            tenant=self.tenant,
            project=data.project,
            key=key,
            status=status,
            priority=data.priority or "medium",
            tags=data.tags or [],
            completed_at=func.now() if status == "completed" else None,
            lease_expires_at=func.now() + timedelta(seconds=self.settings.default_lease_seconds)
            if status == "in_progress"
            else None,
        )
        return values

    async def _insert(self, data: TaskIn) -> tuple[UUID, str]:
        await self._check_handoff(data.related_handoff_id)
        ids = IdRegistry(self.conn, self.principal)
        if data.key is None:
            key = format_id("TASK", (await ids.next_task_numbers(1))[0])
        else:
            key = data.key
            await ids.take_task_key(key)
        values = self._row(data, key)
        row = (
            await self.conn.execute(
                pg_insert(tasks)
                .values(**values)
                .on_conflict_do_nothing(constraint="tasks_key_unique")
                .returning(tasks.c.id)
            )
        ).first()
        if row is None:
            raise _duplicate(data.project, key)
        if data.depends_on:
            await self._set_dependencies(row.id, data.project, data.depends_on, replace=False)
        await self._event("task.created", f"Task created: {key} {data.title}", data.project, row.id)
        return row.id, key

    async def _change(self, ref: str, project: str | None, fields: dict[str, Any]) -> TaskOut:
        if fields.get("depends_on") is not None:
            # Before the task's row: two edits in opposite directions (a on b, b on a) would each hold
            # their own row and wait for the other's (their dependency rows share-lock it).
            await self._lock_dependency_edits()
        current = await self._lock(ref, project)
        await self._check_handoff(fields.get("related_handoff_id"))
        reporter = fields.pop("agent", None)
        if reporter is not None and current.status == "in_progress" and current.assigned_to not in (None, reporter):
            raise Conflict(
                f"task {current.key} is held by {current.assigned_to}; {reporter} cannot change it "
                "(its lease may have lapsed and the task been taken by another agent)",
                assigned_to=current.assigned_to,
            )
        new = fields.pop("status", None)
        dependencies = fields.pop("depends_on", None)
        for name in ("title", "priority"):
            if name in fields and fields[name] is None:
                raise InvalidRequest(f"{name} cannot be null", errors=[{"field": name, "message": "cannot be null"}])
        if "tags" in fields and fields["tags"] is None:
            fields["tags"] = []
        values: dict[str, Any] = {**fields, "updated_at": func.now()}
        moved = new is not None and new != current.status
        if moved:
            if new not in TRANSITIONS[current.status]:
                raise InvalidTransition(
                    f"task {current.key} is {current.status}; it cannot move to {new} "
                    f"({transition_hint(current.status, new)})",
                    current_status=current.status,
                    requested_status=new,
                )
            values["status"] = new
            values["completed_at"] = func.now() if new == "completed" else None
            values["lease_expires_at"] = (
                func.now() + timedelta(seconds=self.settings.default_lease_seconds) if new == "in_progress" else None
            )
            if current.status == "in_progress" and new == "pending" and "assigned_to" not in fields:
                values["assigned_to"] = None  # released work is open to every agent again
        if dependencies is not None:
            await self._set_dependencies(current.id, current.project, dependencies, replace=True)
        change = update(tasks).where(tasks.c.id == current.id).values(**values).returning(*TASK_COLUMNS)
        # Key and project never change here, so the log row is known now and goes in the same statement.
        if moved:
            logged = ("task.status", f"Task {current.key}: {current.status} → {new}")
        elif fields or dependencies is not None:
            logged = ("task.updated", f"Task updated: {current.key} ({', '.join(sorted(fields) or ['depends_on'])})")
        else:
            logged = None  # a repeat of the current status: nothing changed, nothing to log
        if logged is not None:
            entry = event_values(
                self.tenant, *logged, project=current.project, entity_id=current.id, actor=self.principal.name
            )
            changed = change.cte("changed")
            change = select(changed).add_cte(insert(events).values(entry).cte("logged"))
        return TaskOut.from_row((await self.conn.execute(change)).one())

    async def _set_dependencies(self, task_id: UUID, project: str, refs: list[str], replace: bool) -> None:
        targets = {await self._resolve(ref, project, field="depends_on") for ref in refs}
        if task_id in targets:
            raise InvalidRequest("a task cannot depend on itself", errors=[{"field": "depends_on", "message": "self"}])
        if replace:
            if targets and await self._reaches(targets, task_id):
                raise DependencyCycle("these dependencies would form a cycle back to this task; remove one of them")
            await self.conn.execute(delete(deps).where(deps.c.task_id == task_id))
        if targets:
            await self.conn.execute(insert(deps), [{"task_id": task_id, "depends_on_id": t} for t in targets])

    async def _lock_dependency_edits(self) -> None:
        """One dependency edit at a time per tenant, so two edits cannot close a cycle together."""
        await self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"deps:{self.tenant}"})

    async def _reaches(self, starts: set[UUID], target: UUID) -> bool:
        found = await self.conn.execute(
            text(
                """
                WITH RECURSIVE reach(id) AS (
                    SELECT unnest(CAST(:starts AS uuid[]))
                    UNION
                    SELECT d.depends_on_id FROM task_dependencies d JOIN reach r ON d.task_id = r.id
                )
                SELECT 1 FROM reach WHERE id = :target LIMIT 1
                """
            ),
            {"starts": list(starts), "target": target},
        )
        return found.first() is not None

    def _ref_condition(self, ref: str, project: str | None) -> list[Any]:
        try:
            return [tasks.c.tenant == self.tenant, tasks.c.id == UUID(ref)]
        except ValueError:
            cond = [tasks.c.tenant == self.tenant, tasks.c.key == ref]
            return cond if project is None else [*cond, tasks.c.project == project]

    async def _resolve(self, ref: str, project: str | None, field: str | None = None) -> UUID:
        rows = (
            await self.conn.execute(select(tasks.c.id, tasks.c.project).where(*self._ref_condition(ref, project)))
        ).all()
        return self._one(ref, project, rows, field).id

    async def _lock(self, ref: str, project: str | None) -> Row:
        rows = (
            await self.conn.execute(
                select(tasks.c.id, tasks.c.key, tasks.c.project, tasks.c.status, tasks.c.assigned_to)
                .where(*self._ref_condition(ref, project))
                # NO KEY UPDATE: the key columns never change here, and a plain FOR UPDATE would also
                # block other transactions adding dependencies on this task (their foreign key check).
                .with_for_update(key_share=True)
            )
        ).all()
        return self._one(ref, project, rows)

    @staticmethod
    def _one(ref: str, project: str | None, rows: list[Row], field: str | None = None) -> Row:
        if not rows:
            where = f" in project {project}" if project else ""
            if field:
                raise InvalidRequest(
                    f"{field}: task {ref} not found{where}",
                    errors=[{"field": field, "message": f"task {ref} not found{where}"}],
                )
            raise TaskNotFound(f"Task not found: {ref}{where}", ref=ref)
        if len(rows) > 1:
            raise AmbiguousKey(
                f"{ref} names tasks in {len(rows)} projects; add ?project=<name> to say which",
                candidates=[{"id": str(r.id), "project": r.project} for r in rows],
            )
        return rows[0]

    async def _fetch(self, task_id: UUID) -> TaskOut:
        row = (await self.conn.execute(select(*TASK_COLUMNS).where(tasks.c.id == task_id))).one()
        return TaskOut.from_row(row)

    async def _event(self, type_: str, summary: str, project: str, entity_id: object, actor: str | None = None) -> None:
        await record(
            self.conn,
            self.tenant,
            type_,
            summary,
            project=project,
            entity_id=entity_id,
            actor=actor or self.principal.name,
        )
