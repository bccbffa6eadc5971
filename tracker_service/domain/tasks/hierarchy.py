"""Parents and children: where a task may be placed, and what a child's end does to its parent.

A tree is at most MAX_LEVELS deep and never loops. Placing a task takes the tenant's hierarchy
lock (one placement at a time, so two cannot close a loop together) and the parent's row (so it
cannot complete while a child is being added; the child's open count then lands on that row).
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.errors import Conflict, InvalidRequest

MAX_LEVELS = 8

_PARENT = text(
    """
    SELECT id, key, project, status FROM tasks WHERE id = :parent AND tenant = :tenant FOR NO KEY UPDATE
    """
)
# Levels from the root down to :parent, and whether :task is among them (a loop).
_ANCESTRY = text(
    """
    WITH RECURSIVE up(id, parent_id, level) AS (
        SELECT id, parent_id, 1 FROM tasks WHERE id = :parent
        UNION ALL
        SELECT t.id, t.parent_id, up.level + 1 FROM tasks t JOIN up ON t.id = up.parent_id WHERE up.level <= 64
    )
    SELECT max(level) AS levels, coalesce(bool_or(id = :task), false) AS loops FROM up
    """
)
# Levels of :task's own subtree (1 for a task without children).
_HEIGHT = text(
    """
    WITH RECURSIVE down(id, level) AS (
        SELECT CAST(:task AS uuid), 1
        UNION ALL
        SELECT t.id, down.level + 1 FROM tasks t JOIN down ON t.parent_id = down.id WHERE down.level <= 64
    )
    SELECT max(level) FROM down
    """
)
_DESCENDANTS = text(
    """
    WITH RECURSIVE down(id) AS (
        SELECT id FROM tasks WHERE parent_id = :task
        UNION
        SELECT t.id FROM tasks t JOIN down ON t.parent_id = down.id
    )
    SELECT t.key, t.status FROM down JOIN tasks t USING (id) ORDER BY t.created_at LIMIT 21
    """
)


async def lock_placements(conn: AsyncConnection, tenant: str) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"tree:{tenant}"})


async def place(conn: AsyncConnection, tenant: str, task_id: UUID | None, project: str, parent_id: UUID) -> None:
    """Check that the task (None: a new one) may go under `parent_id`; lock the parent's row.
    The caller holds lock_placements."""
    parent = (await conn.execute(_PARENT, {"parent": parent_id, "tenant": tenant})).first()
    if parent is None:
        raise _bad(f"task {parent_id} not found")
    if parent.project != project:
        raise _bad(f"{parent.key} is in project {parent.project}; a parent must be in the task's own project")
    if parent.status in ("completed", "cancelled"):
        raise Conflict(
            f"parent {parent.key} is {parent.status}; reopen it (status=pending) before adding children to it",
            parent=parent.key,
            parent_status=parent.status,
        )
    ancestry = (await conn.execute(_ANCESTRY, {"parent": parent_id, "task": task_id})).one()
    if task_id is not None and (ancestry.loops or parent_id == task_id):
        raise _bad(f"{parent.key} is this task or one of its descendants; a task cannot be its own ancestor")
    height = 1 if task_id is None else (await conn.execute(_HEIGHT, {"task": task_id})).scalar_one()
    if ancestry.levels + height > MAX_LEVELS:
        raise _bad(
            f"under {parent.key} (level {ancestry.levels}) this task's tree ({height} level(s)) would be "
            f"{ancestry.levels + height} levels deep; at most {MAX_LEVELS} are allowed"
        )


async def open_descendants(conn: AsyncConnection, task_id: UUID) -> list[str]:
    """Keys of a task's descendants that are not completed or cancelled (at most 20 named)."""
    rows = (await conn.execute(_DESCENDANTS, {"task": task_id})).all()
    return [f"{r.key} ({r.status})" for r in rows if r.status not in ("completed", "cancelled")]


async def descendants(conn: AsyncConnection, task_id: UUID) -> list[str]:
    return [r.key for r in (await conn.execute(_DESCENDANTS, {"task": task_id})).all()]


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(f"parent: {message}", errors=[{"field": "parent", "message": message}])
