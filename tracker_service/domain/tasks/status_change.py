"""A status change in one statement: lock the task, check the move, update it and log it.

This is the common case of PUT /tasks/{ref}/status (agents report progress all the time). The
statement changes nothing when anything is off (task not found or ambiguous, a move the state
machine refuses, another agent holding the task); the caller then takes the general path, which
re-reads under a lock and says why, or does the change if the task moved on meanwhile.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import tasks
from tracker_service.domain.tasks.states import sources_of

_COLUMNS = ", ".join(f"t.{c.name}" for c in tasks.c if c.name not in ("tenant", "priority_rank"))
_DEPENDS_ON = """(SELECT coalesce(jsonb_agg(jsonb_build_object('id', dep.id, 'key', dep.key, 'status', dep.status)),
                      '[]'::jsonb)
     FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id WHERE d.task_id = t.id) AS depends_on"""

# Same rules as TaskService._change for a status: completed_at and the lease follow the new
# status, a task released from in_progress to pending is unassigned, a repeat of the current
# status changes only the fields given, and the log row says what happened.
_TEMPLATE = f"""
WITH target AS (
    SELECT id, key, project, status, assigned_to FROM tasks
    WHERE tenant = :tenant AND {{match}}
    FOR UPDATE
), one AS (
    SELECT * FROM target WHERE (SELECT count(*) FROM target) = 1
), changed AS (
    UPDATE tasks AS t SET
        status = CAST(:status AS text),
        completion_notes = CASE WHEN :set_notes THEN CAST(:notes AS text) ELSE t.completion_notes END,
        result = CASE WHEN :set_result THEN CAST(:result AS jsonb) ELSE t.result END,
        updated_at = now(),
        completed_at = CASE WHEN one.status = :status THEN t.completed_at
                            WHEN :status = 'completed' THEN now() END,
        lease_expires_at = CASE WHEN one.status = :status THEN t.lease_expires_at
                                WHEN :status = 'in_progress' THEN now() + CAST(:lease AS interval) END,
        assigned_to = CASE WHEN one.status = 'in_progress' AND :status = 'pending' THEN NULL
                           ELSE t.assigned_to END
    FROM one
    WHERE t.id = one.id
      AND (one.status = :status OR one.status = ANY(CAST(:sources AS text[])))
      AND (CAST(:agent AS text) IS NULL OR one.status <> 'in_progress' OR one.assigned_to IS NULL
           OR one.assigned_to = :agent)
    RETURNING {_COLUMNS}, one.status AS previous, {_DEPENDS_ON}
), logged AS (
    INSERT INTO events (tenant, project, type, entity_id, actor, summary)
    SELECT :tenant, project,
           CASE WHEN previous <> :status THEN 'task.status' ELSE 'task.updated' END,
           id::text, :actor,
           left(CASE WHEN previous <> :status THEN 'Task ' || key || ': ' || previous || ' → ' || :status
                     ELSE 'Task updated: ' || key || ' (' || :changed || ')' END, 300)
    FROM changed
    WHERE previous <> :status OR CAST(:changed AS text) <> ''
)
SELECT * FROM changed
"""

_BY_ID = HotStatement(text(_TEMPLATE.format(match="id = CAST(:id AS uuid)")))
_BY_KEY = HotStatement(text(_TEMPLATE.format(match="key = :key")))
_BY_KEY_IN_PROJECT = HotStatement(text(_TEMPLATE.format(match="key = :key AND project = :project")))


async def change_status_at_once(
    conn: AsyncConnection,
    *,
    tenant: str,
    actor: str,
    ref: str,
    project: str | None,
    fields: dict[str, Any],
    lease: timedelta,
) -> dict[str, Any] | None:
    """The changed task's row, or None when the statement changed nothing (see the module doc)."""
    status = fields["status"]
    given = sorted(name for name in fields if name in ("completion_notes", "result"))
    params: dict[str, Any] = {
        "tenant": tenant,
        "actor": actor,
        "status": status,
        "sources": sources_of(status),
        "agent": fields.get("agent"),
        "set_notes": "completion_notes" in fields,
        "notes": fields.get("completion_notes"),
        "set_result": "result" in fields,
        "result": Jsonb(fields["result"]) if "result" in fields else None,
        "lease": lease,
        "changed": ", ".join(given),
    }
    try:
        params["id"] = UUID(ref)
        statement = _BY_ID
    except ValueError:
        params["key"] = ref
        statement = _BY_KEY
        if project is not None:
            params["project"] = project
            statement = _BY_KEY_IN_PROJECT
    row = await statement.first(conn, params)
    if row is not None:
        row.pop("previous")
    return row
