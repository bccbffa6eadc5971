"""Reads only the board needs, beside the domain's own: what a card shows that a task summary
does not, a task's dependents, and each project's totals. No rule lives here."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import task_dependencies, task_totals, tasks
from tracker_service.domain.tasks.states import CLOSED

_dep = tasks.alias("dep")

_CARD_EXTRAS = select(
    tasks.c.id,
    tasks.c.lease_expires_at,
    tasks.c.requires_review,
    select(func.coalesce(func.array_agg(_dep.c.key), []))
    .select_from(task_dependencies.join(_dep, _dep.c.id == task_dependencies.c.depends_on_id))
    .where(task_dependencies.c.task_id == tasks.c.id, _dep.c.status != "completed")
    .correlate(tasks)
    .scalar_subquery()
    .label("blocked_by"),
).where(tasks.c.id.in_(bindparam("ids", expanding=True)))


async def card_extras(conn: AsyncConnection, ids: list[UUID]) -> dict[UUID, Any]:
    """Per task shown: its lease, whether it needs review, and the keys of unfinished dependencies."""
    if not ids:
        return {}
    return {row.id: row for row in await conn.execute(_CARD_EXTRAS, {"ids": ids})}


async def dependents(conn: AsyncConnection, task_id: UUID) -> list[Any]:
    """Tasks that wait on this one."""
    rows = await conn.execute(
        select(tasks.c.key, tasks.c.title, tasks.c.status)
        .select_from(task_dependencies.join(tasks, tasks.c.id == task_dependencies.c.task_id))
        .where(task_dependencies.c.depends_on_id == task_id)
        .order_by(tasks.c.priority_rank, tasks.c.created_at)
        .limit(200)
    )
    return list(rows)


async def project_totals(conn: AsyncConnection, tenant: str) -> dict[str, dict[str, int]]:
    """{project: {status: n}} from the totals the triggers keep (no count of the rows)."""
    rows = await conn.execute(
        select(task_totals.c.project, task_totals.c.status, func.sum(task_totals.c.delta).label("n"))
        .where(task_totals.c.tenant == tenant)
        .group_by(task_totals.c.project, task_totals.c.status)
        .having(func.sum(task_totals.c.delta) != 0)
        .order_by(task_totals.c.project)
    )
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        totals.setdefault(row.project, {})[row.status] = int(row.n)
    return totals


async def open_parents(conn: AsyncConnection, tenant: str, project: str | None, limit: int = 30) -> list[Any]:
    """Parents with open children, with how many of their children are closed: their progress.
    The parents come first from their own index (migration 0010), then only their children are
    counted, so the cost stays with the `limit` shown, not with the project's size."""
    child = tasks.alias("child")
    cond = [tasks.c.tenant == tenant, tasks.c.open_children > 0, tasks.c.status.not_in(CLOSED)]
    if project is not None:
        cond.append(tasks.c.project == project)
    shown = (
        select(tasks.c.id, tasks.c.key, tasks.c.project, tasks.c.title, tasks.c.status)
        .where(*cond)
        .order_by(tasks.c.priority_rank, tasks.c.created_at)
        .limit(limit)
        .subquery()
    )

    def children(*more: Any) -> Any:
        return select(func.count()).where(child.c.parent_id == shown.c.id, *more).scalar_subquery()

    rows = await conn.execute(
        select(
            shown.c.key,
            shown.c.project,
            shown.c.title,
            shown.c.status,
            children().label("total"),
            children(child.c.status.in_(CLOSED)).label("closed"),
        )
    )
    return list(rows)
