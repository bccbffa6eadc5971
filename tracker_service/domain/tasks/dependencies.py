"""Dependencies between tasks: a task is ready when everything it depends on is completed."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import task_dependencies as deps
from tracker_service.domain.tasks.refs import resolve
from tracker_service.errors import DependencyCycle, InvalidRequest

_REACHES = text(
    """
    WITH RECURSIVE reach(id) AS (
        SELECT unnest(CAST(:starts AS uuid[]))
        UNION
        SELECT d.depends_on_id FROM task_dependencies d JOIN reach r ON d.task_id = r.id
    )
    SELECT 1 FROM reach WHERE id = :target LIMIT 1
    """
)


async def lock_edits(conn: AsyncConnection, tenant: str) -> None:
    """One dependency edit at a time per tenant, so two edits cannot close a cycle together. Taken
    before the task's row: edits in opposite directions would each hold their own row and wait for
    the other's (a new dependency row share-locks the task it points at)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"deps:{tenant}"})


async def set_dependencies(
    conn: AsyncConnection, tenant: str, task_id: UUID, project: str, refs: list[str], replace: bool
) -> None:
    """Make `refs` (keys within `project`, or UUIDs) the task's dependencies; with `replace`, instead
    of none (a new task), checking for cycles. A replacing caller holds lock_edits."""
    targets = {await resolve(conn, tenant, ref, project, field="depends_on") for ref in refs}
    if task_id in targets:
        raise InvalidRequest("a task cannot depend on itself", errors=[{"field": "depends_on", "message": "self"}])
    if replace:
        if targets and (await conn.execute(_REACHES, {"starts": list(targets), "target": task_id})).first():
            raise DependencyCycle("these dependencies would form a cycle back to this task; remove one of them")
        await conn.execute(delete(deps).where(deps.c.task_id == task_id))
    if targets:
        await conn.execute(insert(deps), [{"task_id": task_id, "depends_on_id": t} for t in targets])
