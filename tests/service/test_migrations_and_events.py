"""The schema comes from Alembic; every mutation writes its event in its own transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from alembic import command
from sqlalchemy import create_engine, inspect, text

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.db.engine import alembic_config, migrate, normalize_url

TABLES = {
    "api_keys",
    "oauth_clients",
    "oauth_requests",
    "oauth_grants",
    "oauth_codes",
    "oauth_tokens",
    "board_sessions",
    "conversations",
    "conversation_messages",
    "tasks",
    "handoffs",
    "task_dependencies",
    "id_counters",
    "id_free",
    "id_reservations",
    "idempotency_records",
    "events",
    "alembic_version",
    "task_totals",
    "project_settings",
    "backup_cursor",
}


@contextmanager
def throwaway_database(pg_url: str) -> Iterator[tuple[str, object]]:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = pg_url.replace("/tracker_test", "/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.replace("/tracker_test", f"/{name}")
    engine = create_engine(normalize_url(url))
    try:
        yield url, engine
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_migrations_apply_to_an_empty_database_and_roll_back(pg_url):
    with throwaway_database(pg_url) as (url, engine):
        assert set(inspect(engine).get_table_names()) == set()
        migrate(url)
        assert set(inspect(engine).get_table_names()) == TABLES
        migrate(url)  # a second run is a no-op
        command.downgrade(alembic_config(url), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0014"
        # 0006 starts its task totals from the tasks already there; TRUNCATE empties them.
        command.downgrade(alembic_config(url), "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tasks (tenant, project, key, title, priority, status, tags) VALUES "
                    "('t', 'a', 'K-1', 'x', 'low', 'pending', '{}'), ('t', 'a', 'K-2', 'x', 'low', 'pending', '{}'), "
                    "('t', 'b', 'K-1', 'x', 'low', 'completed', '{}')"
                )
            )
        migrate(url)
        totals = "SELECT project, status, sum(delta) FROM task_totals GROUP BY 1, 2 ORDER BY 1, 2"
        with engine.begin() as conn:
            assert [tuple(r) for r in conn.execute(text(totals))] == [("a", "pending", 2), ("b", "completed", 1)]
            conn.execute(text("TRUNCATE tasks CASCADE"))
            assert conn.execute(text(totals)).all() == []


def test_0007_makes_task_ids_tenant_wide_and_keeps_deep_json_as_text(pg_url):
    deep = json.dumps(nested_list(40))
    with throwaway_database(pg_url) as (url, engine):
        migrate(url, "0006")
        with engine.begin() as conn:
            # Before: TASK counters per project; project b reused TASK-001; released 2 is a's key
            # now, released 4 is nobody's; a reservation in b reached TASK-012.
            for statement in (
                "INSERT INTO id_counters (tenant, project, type, last_value) VALUES "
                "('t', 'a', 'TASK', 5), ('t', 'b', 'TASK', 12), ('t', 'a', 'US', 9), ('u', 'a', 'TASK', 1)",
                "INSERT INTO id_free (tenant, project, type, value) VALUES "
                "('t', 'a', 'TASK', 4), ('t', 'b', 'TASK', 4), ('t', 'b', 'TASK', 2), ('t', 'a', 'US', 3)",
                "INSERT INTO id_reservations (tenant, project, type, first_value, count, status, expires_at) "
                "VALUES ('t', 'b', 'TASK', 10, 3, 'active', now() + interval '1 hour')",
                "INSERT INTO tasks (tenant, project, key, title, priority, status, tags, inputs) VALUES "
                "('t', 'a', 'TASK-001', 'x', 'low', 'pending', '{}', NULL), "
                "('t', 'a', 'TASK-002', 'x', 'low', 'pending', '{}', '{\"shallow\": [1]}'), "
                "('t', 'b', 'TASK-001', 'x', 'low', 'pending', '{}', CAST(:deep AS jsonb)), "
                "('t', 'b', 'TASK-020', 'x', 'low', 'pending', '{}', NULL)",
            ):
                conn.execute(text(statement), {"deep": deep})
        migrate(url)
        with engine.connect() as conn:
            counters = conn.execute(text("SELECT tenant, project, type, last_value FROM id_counters ORDER BY 1, 2, 3"))
            assert [tuple(r) for r in counters] == [("t", "", "TASK", 20), ("t", "a", "US", 9), ("u", "", "TASK", 1)]
            free = conn.execute(text("SELECT tenant, project, type, value FROM id_free ORDER BY 1, 2, 3, 4"))
            assert [tuple(r) for r in free] == [("t", "", "TASK", 4), ("t", "a", "US", 3)]
            inputs = dict(conn.execute(text("SELECT project || key, inputs FROM tasks WHERE inputs IS NOT NULL")).all())
            assert inputs == {"aTASK-002": {"shallow": [1]}, "bTASK-001": deep}


def nested_list(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def events_of(db, tenant):
    with db.connect() as conn:
        return conn.execute(
            text("SELECT type, project, actor, summary FROM events WHERE tenant = :t ORDER BY id"), {"t": tenant}
        ).all()


def test_every_mutation_is_logged_in_order(api, db, tenant, tracker_url, make_key, project):
    task = ok(api.post("/tasks", json={"project": project, "title": "logged"}), 201)
    ok(api.patch(f"/tasks/{task['id']}", json={"notes": "n"}))
    ok(api.post("/tasks/next", json={"project": project, "agent": "robot"}))
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "completed"}))
    ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)
    rid = ok(api.post("/ids/reserve", json={"type": "US", "count": 2, "project_id": project}), 201)["reservation_id"]
    ok(api.post(f"/ids/reservations/{rid}/release"))
    with client_for(tracker_url, make_key("admin")) as admin:
        ok(admin.put(f"/ids/{project}/US", json={"last_value": 40}))
    assert api.delete(f"/tasks/{task['id']}").status_code == 204
    rows = events_of(db, tenant)
    types = [r.type for r in rows if r.project == project]
    assert types == [
        "task.created",
        "task.updated",
        "task.claimed",
        "task.status",
        "id.allocated",
        "id.reserved",
        "id.released",
        "id.counter_set",
        "task.deleted",
    ]
    claimed = next(r for r in rows if r.type == "task.claimed")
    assert claimed.actor == "robot" and "TASK-001" in claimed.summary
    assert [r.type for r in rows if r.project is None].count("key.created") >= 2


def test_failed_writes_leave_no_events(api, db, tenant, project):
    ok(api.post("/tasks", json={"project": project, "title": "a", "key": "K-1"}), 201)
    before = len(events_of(db, tenant))
    problem(
        api.post(
            "/tasks/batch",
            json={"tasks": [{"project": project, "title": "b"}, {"project": project, "title": "c", "key": "K-1"}]},
        ),
        409,
        "DUPLICATE_KEY",
    )
    assert len(events_of(db, tenant)) == before
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 1
    # Nor did the failed batch consume an ID: the next automatic key follows on.
    assert ok(api.post("/tasks", json={"project": project, "title": "d"}), 201)["key"] == "TASK-001"
