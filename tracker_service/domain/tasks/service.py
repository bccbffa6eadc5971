"""Task rules for one caller: what each request may do, in one statement or one locked transaction.

Reads are in queries, creation in create, every change of an existing task in change (whose
refusals are turned into errors here), the claim in claim, parents and children in hierarchy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import task_totals, tasks
from tracker_service.domain.keys.service import Principal
from tracker_service.domain.tasks import hierarchy
from tracker_service.domain.tasks.change import Change, Outcome, apply
from tracker_service.domain.tasks.claim import CLAIM, CLAIM_RECORDED
from tracker_service.domain.tasks.create import Creator, check_handoff
from tracker_service.domain.tasks.dependencies import lock_edits, set_dependencies
from tracker_service.domain.tasks.queries import (
    BY_REF,
    PEEK,
    TASK_COLUMNS,
    TaskFilter,
    columns_statement,
    page_statement,
)
from tracker_service.domain.tasks.refs import ambiguous, only, ref_condition, ref_match, resolve
from tracker_service.domain.tasks.schemas import (
    BatchOut,
    ClaimIn,
    HeartbeatIn,
    NextTaskOut,
    StatusIn,
    TaskIn,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskSummary,
)
from tracker_service.domain.tasks.states import CLOSED, transition_hint
from tracker_service.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotAReviewer,
    OpenChildren,
    ReviewRequired,
    SelfReview,
    TaskNotFound,
    TrackerError,
)
from tracker_service.idempotency import KeyedRequest, key_taken
from tracker_service.metrics import CLAIMS
from tracker_service.settings import Settings

_CHILDREN_OPEN = text(
    "SELECT key, status FROM tasks WHERE parent_id = :id AND status NOT IN ('completed', 'cancelled') "
    "ORDER BY created_at LIMIT 20"
)
_DELETE_TREE = text(
    """
    WITH RECURSIVE down(id) AS (
        SELECT CAST(:id AS uuid)
        UNION
        SELECT t.id FROM tasks t JOIN down ON t.parent_id = down.id
    ), gone AS (
        DELETE FROM tasks WHERE tenant = :tenant AND id IN (SELECT id FROM down)
        RETURNING id, key, project, title, parent_id
    )
    INSERT INTO events (tenant, project, type, entity_id, actor, summary, data)
    SELECT :tenant, project, 'task.deleted', id::text, :actor, left('Task deleted: ' || key || ' ' || title, 300),
           -- the backup deletes the task's object by key (tracker_service.backup)
           jsonb_build_object('key', key)
    FROM gone
    RETURNING entity_id, (SELECT parent_id FROM gone WHERE id = CAST(:id AS uuid)) AS parent_id
    """
)


A = TypeVar("A")


@dataclass(frozen=True)
class Answered(Generic[A]):
    answer: A
    replayed: bool = False  # the answer of an earlier request with the same Idempotency-Key


class TaskService:
    def __init__(
        self, conn: AsyncConnection, principal: Principal, settings: Settings, keyed: KeyedRequest | None = None
    ) -> None:
        self.conn = conn
        self.keyed = keyed  # an Idempotency-Key the claim or status change records in its own statement
        self.principal = principal
        self.settings = settings
        self.tenant = principal.tenant
        self.lease = timedelta(seconds=settings.default_lease_seconds)

    # --- reads -------------------------------------------------------------------------

    async def get(self, ref: str, project: str | None = None) -> TaskOut:
        """One statement: the task's row by UUID or key, with not found and ambiguous told apart."""
        match, binds = ref_match(ref, project)
        rows = await BY_REF[match].all(self.conn, {"b_tenant": self.tenant, **binds})
        return TaskOut.from_mapping(only(ref, project, rows))

    async def page(
        self,
        *,
        project: str | None,
        statuses: list[str],
        assigned_to: str | None,
        priority: list[str] | None,
        tag: str | None,
        parent: str | None = None,
        search: str | None = None,
        limit: int,
        offset: int,
    ) -> TaskPage:
        found = TaskFilter(project, statuses, assigned_to, priority, tag, parent, search)
        cond, given = found.prepared(self.tenant)
        rows = await page_statement(found, cond, given).all(self.conn, {**given, "p_limit": limit, "p_offset": offset})
        total = int(rows[0]["total"])
        items = [TaskSummary.model_validate(row) for row in rows if row["id"] is not None]
        return TaskPage(tasks=items, total=total, has_more=offset + len(items) < total)

    async def columns(self, found: TaskFilter, offsets: dict[str, int], size: int) -> dict[str, TaskPage]:
        """A page of each status in `found.statuses` (a board's columns), each from its own offset.

        Unnarrowed, each column is a page read from its index, with totals from the triggers.
        Narrowed (assignee, tag, text...), the matches are found once, in one statement that
        ranks and counts them per status, instead of once per column and again per count.
        """
        if not found.narrowed:
            return {
                status: await self.page(
                    project=found.project,
                    statuses=[status],
                    assigned_to=None,
                    priority=None,
                    tag=None,
                    limit=size,
                    offset=offsets.get(status, 0),
                )
                for status in found.statuses
            }
        pages = {status: TaskPage(tasks=[], total=0, has_more=False) for status in found.statuses}
        for row in await self.conn.execute(columns_statement(found.conditions(self.tenant), found, offsets, size)):
            page = pages[row.column]
            page.total = row.total
            if row.id is not None:
                page.tasks.append(TaskSummary.model_validate(dict(row._mapping)))
        for status, page in pages.items():
            page.has_more = offsets.get(status, 0) + len(page.tasks) < page.total
        return pages

    async def peek_next(self, project: str, status: str, agent: str | None) -> NextTaskOut:
        """The task a claim would take now (reads only)."""
        params = {"b_tenant": self.tenant, "b_project": project, "b_status": status, "b_agent": agent}
        row = await PEEK.first(self.conn, params)
        if row is None:
            return NextTaskOut(task=None, hint=await self._nothing_ready(project, status))
        return NextTaskOut(task=TaskOut.from_mapping(row))

    # --- writes ------------------------------------------------------------------------

    async def create(self, data: TaskIn) -> TaskOut:
        return await self._fetch(await Creator(self.conn, self.principal, self.lease).one(data))

    async def create_batch(self, items: list[TaskIn]) -> BatchOut:
        created = await Creator(self.conn, self.principal, self.lease).batch(items)
        return BatchOut(
            success=True, tasks_added=len(created), task_ids=[k for _, k in created], ids=[i for i, _ in created]
        )

    async def claim_next(self, data: ClaimIn) -> Answered[NextTaskOut]:
        lease = timedelta(seconds=data.lease_seconds) if data.lease_seconds else self.lease
        params = {"b_tenant": self.tenant, "b_project": data.project, "b_agent": data.agent, "b_lease": lease}
        if data.type is not None:
            params["b_type"] = data.type
        typed = data.type is not None
        if self.keyed is None:
            row = await CLAIM[typed].first(self.conn, params)
        else:
            try:
                row = await CLAIM_RECORDED[typed].first(self.conn, {**params, **self.keyed.params(self.tenant)})
            except DBAPIError as exc:
                if not key_taken(exc):
                    raise
                first = await self.keyed.recorded(self.conn, self.tenant)
                return Answered(await self._claim_answer(data, first.get("task")), replayed=True)
        CLAIMS.labels("claimed" if row else "empty").inc()
        return Answered(await self._claim_answer(data, row))

    async def _claim_answer(self, data: ClaimIn, row: dict[str, Any] | None) -> NextTaskOut:
        """The answer to a claim, from the claimed row as the statement returned it or as its key's
        record keeps it (the same fields, as JSON): the two render alike."""
        if row is None:
            return NextTaskOut(task=None, hint=await self._nothing_ready(data.project, "pending"))
        return NextTaskOut(task=TaskOut.from_mapping(row))

    async def set_status(self, ref: str, project: str | None, data: StatusIn) -> Answered[TaskOut]:
        """In the request's transaction; with an Idempotency-Key its record is written by the change
        statement itself, and a repeat answers from that record."""
        fields = data.model_dump(exclude_unset=True, exclude={"status", "agent"})
        change = self._change(status=data.status, agent=data.agent, fields=fields)
        try:
            return Answered(await self._apply(ref, project, change, self.keyed))
        except DBAPIError as exc:
            if self.keyed is None or not key_taken(exc):
                raise
            await self.conn.rollback()  # the failed statement ended the transaction's use
            first = await self.keyed.recorded(self.conn, self.tenant)
            return Answered(TaskOut.from_mapping(first["task"]), replayed=True)

    async def patch(self, ref: str, project: str | None, data: TaskPatch) -> TaskOut:
        fields = data.model_dump(exclude_unset=True)
        status = fields.pop("status", None)
        dependencies = fields.pop("depends_on", None)
        if "tags" in fields and fields["tags"] is None:
            fields["tags"] = []
        await check_handoff(self.conn, self.tenant, fields.get("related_handoff_id"))
        if dependencies is not None or "parent" in fields:
            row = await self._locate(ref, project)
            if dependencies is not None:
                await lock_edits(self.conn, self.tenant)  # before the task's row: see lock_edits
                await set_dependencies(self.conn, self.tenant, row.id, row.project, dependencies, replace=True)
            if "parent" in fields:
                fields["parent_id"] = await self._placed_under(row, fields.pop("parent"))
            ref, project = str(row.id), None
        change = self._change(
            status=status, fields=fields, also_changed=("depends_on",) if dependencies is not None else ()
        )
        return await self._apply(ref, project, change)

    async def cancel(self, ref: str) -> TaskOut:
        """Cancel unfinished work; finished work is a conflict, a repeat is a no-op."""
        return await self._apply(ref, None, self._change(status="cancelled", unfinished_only=True))

    async def heartbeat(self, ref: str, project: str | None, data: HeartbeatIn) -> TaskOut:
        """Extend the lease of a task the agent holds."""
        task_id = await resolve(self.conn, self.tenant, ref, project)
        lease = timedelta(seconds=data.lease_seconds) if data.lease_seconds else self.lease
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

    async def delete(self, ref: str, project: str | None, cascade: bool = False) -> None:
        """Delete a task; one with children only with cascade, which deletes its whole subtree."""
        task_id = (await self._locate(ref, project, lock=True)).id
        if not cascade:
            children = await hierarchy.descendants(self.conn, task_id)
            if children:
                raise Conflict(
                    f"task {ref} has children ({', '.join(children[:20])}); delete them first, or delete the "
                    "whole tree with ?cascade=true",
                    children=children[:20],
                )
        params = {"id": task_id, "tenant": self.tenant, "actor": self.principal.name}
        gone = (await self.conn.execute(_DELETE_TREE, params)).all()
        if gone and gone[0].parent_id is not None:
            await self._settle_parents(gone[0].parent_id)

    # --- internals ---------------------------------------------------------------------

    def _change(self, **request: Any) -> Change:
        return Change(
            tenant=self.tenant,
            actor=self.principal.name,
            key_id=self.principal.key_id,
            admin=self.principal.role == "admin",
            lease=self.lease,
            **request,
        )

    async def _apply(self, ref: str, project: str | None, change: Change, keyed: KeyedRequest | None = None) -> TaskOut:
        outcome = await apply(self.conn, ref, project, change, keyed)
        if outcome.task is None:
            raise await self._refused(ref, project, change, outcome)
        task = TaskOut.from_mapping(outcome.task)
        if outcome.parent_id is not None and task.status in CLOSED and outcome.previous not in CLOSED:
            await self._settle_parents(outcome.parent_id)
        return task

    async def _settle_parents(self, parent_id: UUID) -> None:
        """A child closed: each ancestor set to auto_complete whose children are all closed now
        completes itself, bottom up (the change statement refuses, quietly, any that may not)."""
        next_parent: UUID | None = parent_id
        while next_parent is not None:
            change = self._change(status="completed", only_if_auto=True)
            change.actor = "tracker"
            outcome = await apply(self.conn, str(next_parent), None, change)
            if outcome.task is None:
                return
            next_parent = outcome.parent_id

    async def _refused(self, ref: str, project: str | None, change: Change, outcome: Outcome) -> TrackerError:
        current = outcome.current
        if outcome.matches == 0:
            where = f" in project {project}" if project else ""
            return TaskNotFound(f"Task not found: {ref}{where}", ref=ref)
        if outcome.matches > 1:
            rows = (
                await self.conn.execute(
                    select(tasks.c.id, tasks.c.project).where(*ref_condition(self.tenant, ref, project))
                )
            ).all()
            return ambiguous(ref, rows)
        key, status, holder, wanted = current["key"], current["status"], current["assigned_to"], change.status
        reason = outcome.refusal
        if reason == "invalid_transition":
            return InvalidTransition(
                f"task {key} is {status}; it cannot move to {wanted} ({transition_hint(status, str(wanted))})",
                current_status=status,
                requested_status=wanted,
            )
        if reason == "finished":
            return Conflict(f"task {key} is {status}; finished work cannot be cancelled", current_status=status)
        if reason == "held":
            who = change.agent or change.fields.get("assigned_to") or "another agent"
            return Conflict(
                f"task {key} is held by {holder}; {who} cannot change it or take it while it is {status} "
                "(a lease lapses when its holder stops renewing it; an admin key can reassign the task)",
                assigned_to=holder,
                current_status=status,
            )
        if reason == "review_lowered":
            return Forbidden(f"task {key} requires review; only an admin key can turn that off")
        if reason == "review_required":
            return ReviewRequired(
                f"task {key} requires review: when the work is done move it to in_review; then someone other than "
                f"its worker approves it (status completed) or asks for changes",
                current_status=status,
            )
        if reason == "own_review":
            return SelfReview(
                f"task {key} was sent to review by this key or is worked by {holder}: the verdict must come from "
                "someone else (another key, a reviewer of the project)",
                assigned_to=holder,
            )
        if reason == "not_reviewer":
            return NotAReviewer(
                f"project {current['project']} restricts reviews to its reviewers; "
                f"{change.agent or change.actor} is not one of them (GET /projects/{current['project']}/settings)"
            )
        if reason == "open_children":
            remaining = [
                f"{r.key} ({r.status})" for r in await self.conn.execute(_CHILDREN_OPEN, {"id": current["id"]})
            ]
            return OpenChildren(
                f"task {key} has {current['open_children']} open children: {', '.join(remaining)}; it completes "
                "when they are all completed or cancelled",
                open_children=remaining,
            )
        return Conflict(f"task {key} was not changed ({reason})")

    async def _locate(self, ref: str, project: str | None, lock: bool = False) -> Any:
        query = select(tasks.c.id, tasks.c.key, tasks.c.project).where(*ref_condition(self.tenant, ref, project))
        rows = (await self.conn.execute(query.with_for_update() if lock else query)).all()
        return only(ref, project, rows)

    async def _placed_under(self, row: Any, parent: str | None) -> UUID | None:
        if parent is None:
            return None  # no parent any more
        await hierarchy.lock_placements(self.conn, self.tenant)
        parent_id = await resolve(self.conn, self.tenant, parent, row.project, field="parent")
        await hierarchy.place(self.conn, self.tenant, row.id, row.project, parent_id)
        return parent_id

    async def _fetch(self, task_id: UUID) -> TaskOut:
        rows = await BY_REF["id"].all(self.conn, {"b_tenant": self.tenant, "b_id": task_id})
        return TaskOut.from_mapping(only(str(task_id), None, rows))

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
                "dependencies or children, are assigned to other agents, or are of another type"
            )
        return f"project {project} has no {status} task ({summary})"
