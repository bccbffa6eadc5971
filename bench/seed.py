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


# What a board shows and filters on. Every attribute of task i comes from its own hash of i
# (hashint8extended with a different seed), so status, assignee, tag and title are independent.
BOARD_VERBS = "(ARRAY['Fix','Add','Refactor','Document','Test','Speed up','Remove','Review'])"
BOARD_TOPICS = (
    "(ARRAY['login form','billing export','search index','rate limiter','audit log','webhook retries',"
    "'session cookie','CSV import','dark mode','email digest','API pagination','cache warm-up',"
    "'role checks','upload size','time zones','error pages'])"
)
BOARD_TAGS = ("ui", "api", "db", "docs", "ops")
BOARD_AGENTS = 20


def _h(seed: int, n: int) -> str:
    """SQL for a hash of i in 0..n-1, independent of the other seeds."""
    return f"((hashint8extended(i, {seed}) & 1048575) %% {n})"


def board_tasks(conn: psycopg.Connection, tenant: str, project: str, start: int, end: int) -> None:
    """Tasks start..end (inclusive) of one project, as a board shows them after long use: statuses in
    all seven columns (60% completed, 15% pending, 5% each in progress, blocked, in review, failed,
    cancelled), assignees among 20 agents (every task past pending, a quarter of the pending ones),
    1 in 50 tasks with one of five tags, titles from 8 verbs x 16 topics x 200 services, priorities
    mixed, created i seconds after 2026-01-01. Task i with i % 1000 = 0 is a parent of the next ten
    (ids are md5 of tenant/project/i, so a child names its parent in the same statement)."""
    tags = "(ARRAY[" + ",".join(f"'{t}'" for t in BOARD_TAGS) + "])"
    status = (
        f"CASE {_h(1, 20)} WHEN 0 THEN 'pending' WHEN 1 THEN 'pending' WHEN 2 THEN 'pending' "
        "WHEN 3 THEN 'in_progress' WHEN 4 THEN 'blocked' WHEN 5 THEN 'in_review' WHEN 6 THEN 'failed' "
        "WHEN 7 THEN 'cancelled' ELSE 'completed' END"
    )
    conn.execute(
        f"""
        INSERT INTO tasks (id, tenant, project, key, title, description, priority, status, assigned_to, tags,
                           created_at, updated_at, completed_at, lease_expires_at, requires_review, parent_id)
        SELECT md5(%(tenant)s || '/' || %(project)s || '/' || i)::uuid, %(tenant)s, %(project)s,
               'TASK-' || lpad(i::text, 7, '0'),
               {BOARD_VERBS}[1 + {_h(5, 8)}] || ' ' || {BOARD_TOPICS}[1 + {_h(6, 16)}] || ' in svc-' || {_h(7, 200)},
               'Seeded description of task ' || i || ' with a little text.',
               {PRIORITIES}[1 + {_h(8, 4)}], s.status,
               CASE WHEN s.status <> 'pending' OR {_h(9, 4)} = 0
                    THEN 'agent-' || lpad({_h(2, BOARD_AGENTS)}::text, 2, '0') END,
               CASE WHEN {_h(3, 50)} = 0 THEN ARRAY[{tags}[1 + {_h(4, len(BOARD_TAGS))}]] ELSE '{{}}' END,
               s.at, s.at,
               CASE WHEN s.status = 'completed' THEN s.at + interval '1 hour' END,
               CASE WHEN s.status = 'in_progress' THEN now() + interval '1 day' END,
               s.status = 'in_review',
               CASE WHEN i %% 1000 BETWEEN 1 AND 10
                    THEN md5(%(tenant)s || '/' || %(project)s || '/' || (i - i %% 1000))::uuid END
        FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS i,
             LATERAL (SELECT {status} AS status, timestamptz '2026-01-01' + make_interval(secs => i) AS at) AS s
        """,
        {"tenant": tenant, "project": project, "start": start, "end": end},
    )
    advance_task_counter(conn, tenant, project, end)
