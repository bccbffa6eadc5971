"""Periodic work on tasks (run by tracker_service.sweeper): lapsed leases, the totals' rows."""

from __future__ import annotations

from sqlalchemy import Interval, Text, cast, func, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import events, tasks
from tracker_service.domain.tasks.states import constant, effects


def _lapse_statement():
    """A lapsed lease hands the task back (the state machine's in_progress -> pending), logged with
    who held it. SKIP LOCKED: a task an agent is finishing right now is left to that agent."""
    old = (
        select(tasks.c.id, tasks.c.assigned_to)
        .where(tasks.c.status == "in_progress", tasks.c.lease_expires_at < func.now())
        .order_by(tasks.c.lease_expires_at)
        .limit(1000)
        .with_for_update(skip_locked=True)
        .cte("old")
    )
    moved = effects(
        tasks,
        previous=constant("in_progress"),
        new=constant("pending"),
        agent=None,
        lease=cast(None, Interval),
        by_key=None,
    )
    moved.pop("review_requested_by")
    lapsed = (
        update(tasks)
        .where(tasks.c.id == old.c.id)
        .values(moved)
        .returning(tasks.c.id, tasks.c.tenant, tasks.c.project, tasks.c.key, old.c.assigned_to)
        .cte("lapsed")
    )
    summary = (
        literal("Lease lapsed: ")
        + lapsed.c.key
        + " (held by "
        + func.coalesce(lapsed.c.assigned_to, "nobody")
        + ") is pending again"
    )
    return (
        insert(events)
        .from_select(
            ["tenant", "project", "type", "entity_id", "actor", "summary"],
            select(
                lapsed.c.tenant,
                lapsed.c.project,
                literal("task.lease_expired"),
                cast(lapsed.c.id, Text),
                literal("tracker"),
                summary,
            ),
        )
        .returning(events.c.entity_id)
    )


_LAPSE = _lapse_statement()


async def lapse_expired_leases(conn: AsyncConnection) -> int:
    """Return every task whose lease lapsed to pending; how many there were."""
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


async def fold_task_totals(conn: AsyncConnection) -> None:
    await conn.execute(FOLD_TASK_TOTALS)
