"""Leases: heartbeats extend them, lapsed ones hand the task back, a late holder gets a conflict."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from tests.helpers import ok, problem
from tracker_service.db.engine import create_engine
from tracker_service.sweeper import sweep_once


def expire_lease(db, task_id):
    with db.begin() as conn:
        conn.execute(
            text("UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE id = :id"), {"id": task_id}
        )


def sweep(pg_url) -> int:
    async def run() -> int:
        engine = create_engine(pg_url)
        try:
            return await sweep_once(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_heartbeat_extends_only_the_holders_lease(api, project):
    ok(api.post("/tasks", json={"project": project, "title": "long job"}), 201)
    task = ok(api.post("/tasks/next", json={"project": project, "agent": "a", "lease_seconds": 30}))["task"]
    beat = ok(api.post(f"/tasks/{task['key']}/heartbeat", json={"agent": "a", "lease_seconds": 600}))
    assert beat["lease_expires_at"] > task["lease_expires_at"] and beat["status"] == "in_progress"
    body = problem(api.post(f"/tasks/{task['key']}/heartbeat", json={"agent": "b"}), 409, "CONFLICT")
    assert "held by a" in body["detail"]
    ok(api.put(f"/tasks/{task['key']}/status", json={"status": "completed", "agent": "a"}))
    body = problem(api.post(f"/tasks/{task['key']}/heartbeat", json={"agent": "a"}), 409, "CONFLICT")
    assert "completed" in body["detail"]
    problem(api.post("/tasks/TASK-999/heartbeat", json={"agent": "a"}), 404, "TASK_NOT_FOUND")


def test_lapsed_lease_returns_the_task_and_the_late_holder_gets_a_conflict(api, db, pg_url, project):
    ok(api.post("/tasks", json={"project": project, "title": "contested"}), 201)
    task = ok(api.post("/tasks/next", json={"project": project, "agent": "slow", "lease_seconds": 60}))["task"]
    expire_lease(db, task["id"])
    # The session's tracker sweeps every few seconds too and may take it first: whoever sweeps,
    # the task is back once, and logged once (below).
    sweep(pg_url)
    back = ok(api.get(f"/tasks/{task['id']}"))
    assert (back["status"], back["assigned_to"], back["lease_expires_at"]) == ("pending", None, None)
    log = ok(api.get("/log", params={"project": project, "type": "task.lease_expired"}))["entries"]
    assert len(log) == 1 and "held by slow" in log[0]["summary"] and log[0]["actor"] == "tracker"

    taken = ok(api.post("/tasks/next", json={"project": project, "agent": "fast"}))["task"]
    assert taken["id"] == task["id"]
    # The first holder comes back late: a clear conflict, not a silent overwrite.
    body = problem(
        api.put(f"/tasks/{task['id']}/status", json={"status": "completed", "agent": "slow"}), 409, "CONFLICT"
    )
    assert "held by fast" in body["detail"] and body["assigned_to"] == "fast"
    problem(api.post(f"/tasks/{task['id']}/heartbeat", json={"agent": "slow"}), 409, "CONFLICT")
    assert ok(api.get(f"/tasks/{task['id']}"))["assigned_to"] == "fast"
    done = ok(api.put(f"/tasks/{task['id']}/status", json={"status": "completed", "agent": "fast"}))["updated_task"]
    assert done["status"] == "completed"


def test_a_live_lease_is_not_swept(api, pg_url, project):
    ok(api.post("/tasks", json={"project": project, "title": "fine"}), 201)
    task = ok(api.post("/tasks/next", json={"project": project, "agent": "a", "lease_seconds": 600}))["task"]
    sweep(pg_url)
    assert ok(api.get(f"/tasks/{task['id']}"))["status"] == "in_progress"


def test_the_running_tracker_sweeps_by_itself(app_with, api_key, db, project):
    c = app_with(sweep_interval_seconds=1, key=api_key)
    ok(c.post("/tasks", json={"project": project, "title": "forgotten"}), 201)
    task = ok(c.post("/tasks/next", json={"project": project, "agent": "gone", "lease_seconds": 60}))["task"]
    expire_lease(db, task["id"])
    deadline = time.monotonic() + 30
    while ok(c.get(f"/tasks/{task['id']}"))["status"] != "pending" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ok(c.get(f"/tasks/{task['id']}"))["status"] == "pending"
