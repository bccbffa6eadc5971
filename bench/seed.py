"""Fast seeding straight into the tracker's schema with INSERT ... SELECT generate_series."""

from __future__ import annotations

import psycopg

PRIORITIES = "(ARRAY['critical','high','medium','low'])"


def pending_tasks(conn: psycopg.Connection, tenant: str, project: str, count: int, start: int = 1) -> None:
    """`count` pending, unassigned tasks TASK-<start>.. with mixed priorities, oldest first by number."""
    conn.execute(
        f"""
        INSERT INTO tasks (tenant, project, key, title, priority, status, tags, created_at, updated_at)
        SELECT %(tenant)s, %(project)s, 'TASK-' || lpad(i::text, 7, '0'), 'Seeded task ' || i,
               {PRIORITIES}[1 + i %% 4], 'pending', '{{}}',
               now() - make_interval(secs => %(end)s - i), now()
        FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS i
        """,
        {"tenant": tenant, "project": project, "start": start, "end": start + count - 1},
    )
    advance_task_counter(conn, tenant, project, start + count - 1)


def advance_task_counter(conn: psycopg.Connection, tenant: str, project: str, value: int) -> None:
    """Keep the TASK counter past seeded keys, as the service does for keys given by hand."""
    conn.execute(
        """
        INSERT INTO id_counters (tenant, project, type, last_value) VALUES (%s, %s, 'TASK', %s)
        ON CONFLICT (tenant, project, type)
        DO UPDATE SET last_value = greatest(id_counters.last_value, EXCLUDED.last_value)
        """,
        (tenant, project, value),
    )


def mixed_tasks(conn: psycopg.Connection, tenant: str, projects: int, start: int, end: int) -> None:
    """Tasks start..end (inclusive) spread over `projects` projects p0..pN-1, like a tracker that has
    been used for a while: 75% completed, 20% pending, 5% in progress; priorities mixed; created over
    time (task i is i seconds after task 0)."""
    conn.execute(
        f"""
        INSERT INTO tasks (tenant, project, key, title, description, priority, status, assigned_to, tags,
                           created_at, updated_at, completed_at, lease_expires_at)
        SELECT %(tenant)s, 'p' || (i %% %(projects)s), 'TASK-' || lpad(i::text, 7, '0'),
               'Seeded task ' || i, 'Seeded description of task ' || i || ' with a little text.',
               {PRIORITIES}[1 + (i / %(projects)s) %% 4], s.status,
               CASE WHEN s.status = 'in_progress' THEN 'agent-' || (i %% 7) END,
               CASE WHEN i %% 3 = 0 THEN ARRAY['seed'] ELSE '{{}}' END,
               timestamptz '2026-01-01' + make_interval(secs => i), timestamptz '2026-01-01' + make_interval(secs => i),
               CASE WHEN s.status = 'completed' THEN timestamptz '2026-01-01' + make_interval(secs => i + 60) END,
               CASE WHEN s.status = 'in_progress' THEN now() + interval '1 day' END
        FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS i,
             LATERAL (SELECT CASE WHEN (i / %(projects)s) %% 20 < 4 THEN 'pending'
                                  WHEN (i / %(projects)s) %% 20 = 4 THEN 'in_progress'
                                  ELSE 'completed' END AS status) AS s
        """,
        {"tenant": tenant, "projects": projects, "start": start, "end": end},
    )
