"""The schema comes from Alembic; every mutation writes its event in its own transaction."""

from __future__ import annotations

import uuid

import psycopg
from alembic import command
from sqlalchemy import create_engine, inspect, text

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.db.engine import alembic_config, migrate, normalize_url

TABLES = {
    "api_keys",
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
}


def test_migrations_apply_to_an_empty_database_and_roll_back(pg_url):
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = pg_url.replace("/tracker_test", "/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.replace("/tracker_test", f"/{name}")
    engine = create_engine(normalize_url(url))
    try:
        assert set(inspect(engine).get_table_names()) == set()
        migrate(url)
        assert set(inspect(engine).get_table_names()) == TABLES
        migrate(url)  # a second run is a no-op
        command.downgrade(alembic_config(url), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        migrate(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0006"
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
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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
