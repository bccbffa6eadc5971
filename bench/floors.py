"""Raw-SQL floors: the service's claim and ID allocation as single statements through psycopg.

CLAIM has the shape of TaskService.claim_next (UPDATE ... WHERE id = (SELECT ... ORDER BY
priority_rank, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING the task's columns and its
dependencies), in autocommit: one round trip and one commit, nothing else (no key check, no
event row, no explicit transaction).
"""

from __future__ import annotations

TASK_COLUMNS = (
    "t.id, t.project, t.key, t.title, t.description, t.priority, t.status, t.assigned_to, t.tags, t.notes, "
    "t.completion_notes, t.inputs, t.outputs, t.due_date, t.related_handoff_id, t.result, t.type, "
    "t.lease_expires_at, t.created_at, t.updated_at, t.completed_at"
)

# The candidate search (what GET /tasks/next does before fetching the row); also used for EXPLAIN.
NEXT = """
SELECT cand.id FROM tasks AS cand
WHERE cand.tenant = %(tenant)s AND cand.project = %(project)s AND cand.status = 'pending'
  AND (cand.assigned_to IS NULL OR cand.assigned_to = %(agent)s)
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id
      WHERE d.task_id = cand.id AND dep.status <> 'completed')
ORDER BY cand.priority_rank, cand.created_at, cand.id
LIMIT 1
"""

CLAIM = f"""
UPDATE tasks AS t
SET status = 'in_progress', assigned_to = %(agent)s, lease_expires_at = now() + interval '900 seconds',
    updated_at = now()
WHERE t.id = ({NEXT} FOR UPDATE OF cand SKIP LOCKED)
RETURNING {TASK_COLUMNS},
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', dep.id, 'key', dep.key, 'status', dep.status)), '[]'::jsonb)
     FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id WHERE d.task_id = t.id) AS depends_on
"""

# What GET /tasks?project=&status=&limit=50 runs: the page, and the total kept by the triggers of
# migration 0006 (a count of the rows only with other filters).
LIST_PAGE = """
SELECT id, key, project, title, priority, status, assigned_to, tags, created_at, updated_at
FROM tasks WHERE tenant = %(tenant)s AND project = %(project)s AND status = ANY(%(statuses)s)
ORDER BY priority_rank, created_at, id LIMIT 50
"""
LIST_TOTAL = """
SELECT coalesce(sum(delta), 0) FROM task_totals
WHERE tenant = %(tenant)s AND project = %(project)s AND status = ANY(%(statuses)s)
"""
LIST_TOTAL_EVERY_STATUS = """
SELECT coalesce(sum(delta), 0) FROM task_totals WHERE tenant = %(tenant)s AND project = %(project)s
"""
# What the total was before: a count of the matching rows.
LIST_COUNT = """
SELECT count(*) FROM tasks WHERE tenant = %(tenant)s AND project = %(project)s AND status = ANY(%(statuses)s)
"""

ALLOCATE = """
INSERT INTO id_counters AS c (tenant, project, type, last_value) VALUES (%(tenant)s, %(project)s, %(type)s, 1)
ON CONFLICT (tenant, project, type) DO UPDATE SET last_value = c.last_value + 1, updated_at = now()
RETURNING c.last_value
"""
