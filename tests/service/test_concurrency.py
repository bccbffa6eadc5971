"""Races between agents, run for real: concurrent HTTP clients against one tracker on PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from tests.conftest import client_for
from tests.helpers import ok, problem

CLIENTS = 32


@pytest.mark.slow
def test_32_claimers_on_500_tasks_each_get_distinct_tasks(tracker_url, api, api_key, project):
    for start in range(0, 500, 100):
        batch = [
            {"project": project, "title": f"task {i}", "priority": ("critical", "high", "medium", "low")[i % 4]}
            for i in range(start, start + 100)
        ]
        ok(api.post("/tasks/batch", json={"tasks": batch}), 201)

    def claimer(n: int) -> list[str]:
        got = []
        with client_for(tracker_url, api_key) as c:
            while task := ok(c.post("/tasks/next", json={"project": project, "agent": f"agent-{n}"}))["task"]:
                assert task["assigned_to"] == f"agent-{n}" and task["status"] == "in_progress"
                got.append(task["id"])
        return got

    with ThreadPoolExecutor(CLIENTS) as pool:
        per_agent = list(pool.map(claimer, range(CLIENTS)))
    claimed = [t for ts in per_agent for t in ts]
    duplicates = [t for t, n in Counter(claimed).items() if n > 1]
    assert duplicates == [] and len(claimed) == 500
    assert sum(1 for ts in per_agent if ts) > 1  # the work really was spread over several agents
    page = ok(api.get("/tasks", params={"project": project, "status": "in_progress", "limit": 1}))
    assert page["total"] == 500


@pytest.mark.slow
def test_32_allocators_get_distinct_gapless_ids(tracker_url, api_key, project):
    per_client = 20

    def allocator(_: int) -> list[int]:
        with client_for(tracker_url, api_key) as c:
            return [
                ok(c.post("/ids/next", json={"type": "US", "project_id": project}), 201)["number"]
                for _ in range(per_client)
            ]

    with ThreadPoolExecutor(CLIENTS) as pool:
        numbers = [n for ns in pool.map(allocator, range(CLIENTS)) for n in ns]
    assert sorted(numbers) == list(range(1, CLIENTS * per_client + 1))


@pytest.mark.slow
def test_reservations_and_allocations_race_without_overlap(tracker_url, api_key, project):
    def worker(n: int) -> list[str]:
        with client_for(tracker_url, api_key) as c:
            if n % 2:
                res = ok(c.post("/ids/reserve", json={"type": "SPEC", "count": 5, "project_id": project}), 201)
                return res["reserved_ids"]
            return [
                ok(c.post("/ids/next", json={"type": "SPEC", "project_id": project}), 201)["next_id"] for _ in range(5)
            ]

    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = [i for chunk in pool.map(worker, range(CLIENTS)) for i in chunk]
    assert sorted(ids) == [f"SPEC-{n:03d}" for n in range(1, CLIENTS * 5 + 1)]


@pytest.mark.slow
def test_concurrent_status_changes_settle_to_one_outcome(tracker_url, api, api_key, project):
    """Many agents completing and cancelling one task: each change is applied whole, the log agrees."""
    task = ok(api.post("/tasks", json={"project": project, "title": "contested", "status": "in_progress"}), 201)

    def change(n: int) -> int:
        with client_for(tracker_url, api_key) as c:
            status = "completed" if n % 2 else "cancelled"
            return c.put(f"/tasks/{task['id']}/status", json={"status": status}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(change, range(16)))
    final = ok(api.get(f"/tasks/{task['id']}"))
    # Exactly one of the two moves out of in_progress won; repeats of the winner succeed, the other is refused.
    assert final["status"] in ("completed", "cancelled")
    winners = sum(
        1 for n, code in enumerate(codes) if code == 200 and ("completed" if n % 2 else "cancelled") == final["status"]
    )
    assert winners == 8 and codes.count(400) == 8


def test_a_deadlock_is_a_retryable_write_conflict_that_changes_nothing(api, db, tenant, project):
    """PostgreSQL settles a deadlock by rolling one side back; the tracker's side gets a 503
    WRITE_CONFLICT (which the bridge retries), not a claim that the database is down."""
    a = ok(api.post("/tasks", json={"project": project, "title": "a"}), 201)
    b = ok(api.post("/tasks", json={"project": project, "title": "b"}), 201)
    holder = db.connect()
    try:
        tx = holder.begin()
        lock = text("SELECT 1 FROM tasks WHERE id = :id FOR UPDATE")
        holder.execute(lock, {"id": b["id"]})
        with ThreadPoolExecutor(1) as pool:
            # The edit locks task a, then its new dependency row needs a share lock on b: waiting
            # first, it is the side PostgreSQL's deadlock check (after deadlock_timeout) rolls back.
            edit = pool.submit(api.patch, f"/tasks/{a['id']}", json={"depends_on": [b["id"]], "notes": "edited"})
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query LIKE '%task_dependencies%'"
            )
            deadline = time.monotonic() + 30
            # Until the edit waits for b (asked outside the holder's transaction, whose view of
            # pg_stat_activity would stay the same).
            while True:
                with db.connect() as probe:
                    if probe.execute(waiting).scalar_one():
                        break
                assert time.monotonic() < deadline, "the edit never waited for the held task"
                time.sleep(0.02)
            holder.execute(lock, {"id": a["id"]})  # closes the cycle; waits until the edit is undone
            body = problem(edit.result(), 503, "WRITE_CONFLICT")
        tx.rollback()
    finally:
        holder.close()
    assert "deadlock" in body["detail"] and edit.result().headers["Retry-After"] == "1"
    unchanged = ok(api.get(f"/tasks/{a['id']}"))
    assert unchanged["depends_on"] == [] and unchanged["notes"] is None
    retried = ok(api.patch(f"/tasks/{a['id']}", json={"depends_on": [b["id"]], "notes": "edited"}))
    assert [d["id"] for d in retried["depends_on"]] == [b["id"]]


def test_opposing_dependency_edits_end_in_success_and_a_cycle_refusal(api, project):
    """a depends on b and b on a, asked at once: one wins, the other is told it would close a cycle
    (it used to deadlock: 503 WRITE_CONFLICT in 38 of 40 rounds)."""
    with ThreadPoolExecutor(2) as pool:
        for round_ in range(20):
            a = ok(api.post("/tasks", json={"project": project, "title": f"a{round_}"}), 201)
            b = ok(api.post("/tasks", json={"project": project, "title": f"b{round_}"}), 201)
            edits = [
                pool.submit(api.patch, f"/tasks/{x['id']}", json={"depends_on": [y["id"]]}) for x, y in ((a, b), (b, a))
            ]
            codes = sorted(edit.result().status_code for edit in edits)
            assert codes == [200, 409], [edit.result().text for edit in edits]
            refused = next(edit.result() for edit in edits if edit.result().status_code == 409)
            problem(refused, 409, "DEPENDENCY_CYCLE")
