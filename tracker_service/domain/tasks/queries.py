"""What a task looks like when read, and the rule for the next task to work on.

Statements are built once at import: the hot paths (claim, status change) run them per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    true,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import task_dependencies as deps
from tracker_service.db.models import task_totals, tasks
from tracker_service.domain.tasks.refs import ref_match, ref_where

_dep = tasks.alias("dep")
_child = tasks.alias("child")
_up = tasks.alias("up")
_cand = tasks.alias("cand")

# Columns kept for the tracker's own bookkeeping, never shown as they are.
_INTERNAL = ("tenant", "priority_rank", "review_requested_by", "parent_id", "open_children")


def _object_of(row: Any) -> Any:
    return func.jsonb_build_object("id", row.c.id, "key", row.c.key, "status", row.c.status)


def _depends_on(row: Any) -> Any:
    return (
        select(func.coalesce(func.jsonb_agg(_object_of(_dep)), text("'[]'::jsonb")))
        .select_from(deps.join(_dep, _dep.c.id == deps.c.depends_on_id))
        .where(deps.c.task_id == row.c.id)
        .correlate(row)
        .scalar_subquery()
        .label("depends_on")
    )


def _parent(row: Any) -> Any:
    return select(_object_of(_up)).where(_up.c.id == row.c.parent_id).correlate(row).scalar_subquery().label("parent")


def _children(row: Any) -> Any:
    """{total, by_status} of a task's children, or null when it has none."""
    by_status = (
        select(_child.c.status, func.count().label("n"))
        .where(_child.c.parent_id == row.c.id)
        .group_by(_child.c.status)
        .correlate(row)
        .subquery("by_status")
    )
    return (
        select(
            func.jsonb_build_object(
                "total", func.sum(by_status.c.n), "by_status", func.jsonb_object_agg(by_status.c.status, by_status.c.n)
            )
        )
        .having(func.count() > 0)
        .scalar_subquery()
        .label("children")
    )


def task_columns(row: Any = tasks) -> list[Any]:
    """A task's columns as shown (TaskOut), for `row` (the tasks table, or a CTE of its rows)."""
    return [c for c in row.c if c.name not in _INTERNAL] + [_depends_on(row), _parent(row), _children(row)]


TASK_COLUMNS = task_columns()
SUMMARY_NAMES = (
    "id",
    "key",
    "project",
    "title",
    "status",
    "priority",
    "assigned_to",
    "tags",
    "due_date",
    "created_at",
    "updated_at",
)
SUMMARY_COLUMNS = [tasks.c[n] for n in SUMMARY_NAMES] + [tasks.c.key.label("task_id"), _children(tasks)]
ORDER = (tasks.c.priority_rank, tasks.c.created_at, tasks.c.id)


def ready(candidate: Any) -> Any:
    """Nothing keeps the candidate from being worked on: every dependency is completed (approved,
    for one that needed review) and it is no parent with open children (those are containers)."""
    unfinished = exists().where(
        deps.c.task_id == candidate.c.id, deps.c.depends_on_id == _dep.c.id, _dep.c.status != "completed"
    )
    return and_(~unfinished, candidate.c.open_children == 0)


def next_task(typed: bool, status: str | None = None) -> Any:
    """The rule for the next task, shared by peek and claim: highest priority, then oldest, among
    ready tasks that are unassigned or assigned to the asking agent. Bind names differ from column
    names because SQLAlchemy reserves those in UPDATE statements."""
    c = _cand
    cond = [
        c.c.tenant == bindparam("b_tenant"),
        c.c.project == bindparam("b_project"),
        # The claim's status is a constant: PostgreSQL's plan then uses the partial pending index.
        c.c.status == (bindparam("b_status") if status is None else status),
        (c.c.assigned_to.is_(None)) | (c.c.assigned_to == bindparam("b_agent")),
        ready(c),
    ]
    if typed:
        cond.append(c.c.type == bindparam("b_type"))
    return select(c.c.id).where(*cond).order_by(c.c.priority_rank, c.c.created_at, c.c.id).limit(1)


def candidate() -> Any:
    return _cand


PEEK = HotStatement(select(*TASK_COLUMNS).where(tasks.c.id == next_task(typed=False).scalar_subquery()))


@dataclass
class TaskFilter:
    """What a list of tasks is narrowed to (GET /tasks, the board): the one meaning of each filter."""

    project: str | None = None
    statuses: list[str] = field(default_factory=list)
    assigned_to: str | None = None
    priority: list[str] | None = None  # any of these
    tag: str | None = None
    parent: str | None = None
    search: str | None = None

    @property
    def narrowed(self) -> bool:
        """Beyond project and status: its rows must be counted (no kept totals say how many)."""
        given = (self.assigned_to, self.tag, self.parent)
        return bool(self.search or self.priority) or any(f is not None for f in given)

    def conditions(self, tenant: str) -> list[Any]:
        """The conditions with the filter's values written in (for statements built per request)."""
        return self._where(tenant, prepared=False)[0]

    def prepared(self, tenant: str) -> tuple[list[Any], dict[str, Any]]:
        """The conditions with named binds, and the binds' values: the names given say the shape,
        so one statement per shape can be prepared once (db.hot)."""
        return self._where(tenant, prepared=True)

    def _where(self, tenant: str, prepared: bool) -> tuple[list[Any], dict[str, Any]]:
        given: dict[str, Any] = {}

        def bind(name: str, value: Any, type_: Any = None) -> Any:
            given[name] = value
            return bindparam(name, type_=type_) if prepared else bindparam(name, value, type_=type_, unique=True)

        cond = [tasks.c.tenant == bind("b_tenant", tenant)]
        if self.project is not None:
            cond.append(tasks.c.project == bind("f_project", self.project))
        if self.statuses:
            cond.append(tasks.c.status == any_(bind("f_statuses", list(self.statuses), ARRAY(Text))))
        if self.assigned_to is not None:
            cond.append(tasks.c.assigned_to == bind("f_assigned_to", self.assigned_to))
        if self.priority:
            cond.append(tasks.c.priority == any_(bind("f_priorities", list(self.priority), ARRAY(Text))))
        if self.tag is not None:
            cond.append(tasks.c.tags.contains(bind("f_tags", [self.tag], ARRAY(Text))))
        if self.parent is not None:
            # Like every filter, one that matches nothing gives an empty page.
            match, ref = ref_match(self.parent, self.project)
            given.update(ref)
            parents = select(tasks.c.id).where(
                *ref_where(tasks, match, None if prepared else {"b_tenant": tenant, **ref})
            )
            cond.append(tasks.c.parent_id.in_(parents.scalar_subquery()))
        if self.search:
            # Served by the trigram indexes (migration 0010); % and _ are the text itself.
            like = "%" + self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            pattern = bind("f_like", like)
            cond.append(or_(tasks.c.title.ilike(pattern, escape="\\"), tasks.c.key.ilike(pattern, escape="\\")))
        return cond, given


# A task's shown columns by each way of naming it (refs.ref_match): one prepared statement each.
BY_REF = {
    match: HotStatement(select(*TASK_COLUMNS).where(*ref_where(tasks, match)))
    for match in ("id", "key", "key_in_project")
}
_PAGES: dict[tuple[bool, frozenset[str]], HotStatement] = {}


def page_statement(found: TaskFilter, cond: list[Any], given: dict[str, Any]) -> HotStatement:
    """A page of task summaries and the total it is part of, in one statement (one row with the
    total and no task when the page is empty), prepared once per shape of filter: `cond` and
    `given` are TaskFilter.prepared's, binds p_limit and p_offset are the page's."""
    shape = (found.narrowed, frozenset(given))
    if shape not in _PAGES:
        if found.narrowed:
            counted = select(func.count()).select_from(tasks).where(*cond)
        else:
            # By project and status only: the sum of the triggers' deltas, not a count of the rows.
            kept = [task_totals.c.tenant == bindparam("b_tenant")]
            if "f_project" in given:
                kept.append(task_totals.c.project == bindparam("f_project"))
            if "f_statuses" in given:
                kept.append(task_totals.c.status == any_(bindparam("f_statuses", type_=ARRAY(Text))))
            counted = select(func.coalesce(func.sum(task_totals.c.delta), 0)).where(*kept)
        page = (
            # n: the page's order, kept through the join below (a subquery's order is not).
            select(*SUMMARY_COLUMNS, func.row_number().over(order_by=ORDER).label("n"))
            .where(*cond)
            .order_by(*ORDER)
            .limit(bindparam("p_limit", type_=Integer))
            .offset(bindparam("p_offset", type_=Integer))
            .subquery("page")
        )
        one = select(literal(1).label("one")).subquery("one")
        _PAGES[shape] = HotStatement(
            select(counted.scalar_subquery().label("total"), *page.c)
            .select_from(one.outerjoin(page, true()))
            .order_by(page.c.n)
        )
    return _PAGES[shape]


def columns_statement(cond: list[Any], found: TaskFilter, offsets: dict[str, int], size: int) -> Any:
    """Matches ranked and counted per status in one pass; per status the rows of its page, and its
    first row even off the page, so every column learns its total."""
    ranked = (
        select(
            tasks.c.id.label("match_id"),
            tasks.c.status.label("column"),
            func.count().over(partition_by=tasks.c.status).label("total"),
            func.row_number().over(partition_by=tasks.c.status, order_by=ORDER).label("rn"),
        )
        .where(*cond)
        .cte("ranked")
    )
    window = values(column("status", Text), column("start", Integer), name="win").data(
        [(status, offsets.get(status, 0)) for status in found.statuses]
    )
    on_page = and_(ranked.c.rn > window.c.start, ranked.c.rn <= window.c.start + size)
    return (
        select(ranked.c.column, ranked.c.total, *SUMMARY_COLUMNS)
        .select_from(
            ranked.join(window, window.c.status == ranked.c.column).outerjoin(
                tasks, and_(tasks.c.id == ranked.c.match_id, on_page)
            )
        )
        .where(or_(ranked.c.rn == 1, on_page))
        .order_by(ranked.c.column, ranked.c.rn)
    )
