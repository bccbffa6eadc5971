"""The one-statement batch path gives what creating the tasks one by one would."""

from __future__ import annotations

from tests.helpers import ok, problem


def test_batch_keys_follow_released_ids_then_the_counter(api, project):
    reserved = ok(api.post("/ids/reserve", json={"type": "TASK", "count": 4, "project_id": project}), 201)
    ok(api.post(f"/ids/reservations/{reserved['reservation_id']}/release", json={"keep": ["TASK-002"]}))
    # Released: TASK-001, TASK-003, TASK-004; the counter is at 4.
    added = ok(
        api.post("/tasks/batch", json={"tasks": [{"project": project, "title": f"t{i}"} for i in range(5)]}), 201
    )
    assert added["task_ids"] == ["TASK-001", "TASK-003", "TASK-004", "TASK-005", "TASK-006"]
    listed = ok(api.get("/tasks", params={"project": project, "limit": 50}))
    assert sorted(t["key"] for t in listed["tasks"]) == added["task_ids"]


def test_batch_of_hand_picked_keys_moves_the_counter(api, project):
    added = ok(
        api.post(
            "/tasks/batch",
            json={
                "tasks": [
                    {"project": project, "title": "a", "key": "TASK-010"},
                    {"project": project, "title": "b", "key": "X-1"},
                ]
            },
        ),
        201,
    )
    assert added["task_ids"] == ["TASK-010", "X-1"]
    auto = ok(api.post("/tasks", json={"project": project, "title": "c"}), 201)
    assert auto["key"] == "TASK-011"


def test_batch_duplicate_key_changes_nothing(api, project):
    ok(api.post("/tasks", json={"project": project, "title": "first", "key": "X-1"}), 201)
    problem(
        api.post(
            "/tasks/batch",
            json={"tasks": [{"project": project, "title": "a"}, {"project": project, "title": "b", "key": "X-1"}]},
        ),
        409,
        "DUPLICATE_KEY",
    )
    problem(
        api.post(
            "/tasks/batch",
            json={
                "tasks": [
                    {"project": project, "title": "a", "key": "Y"},
                    {"project": project, "title": "b", "key": "Y"},
                ]
            },
        ),
        409,
        "DUPLICATE_KEY",
    )
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 1
    # The failed batches allocated nothing that stuck: the next automatic key is still TASK-001.
    assert ok(api.post("/tasks", json={"project": project, "title": "c"}), 201)["key"] == "TASK-001"


def test_batch_events_one_per_task(api, project):
    added = ok(
        api.post("/tasks/batch", json={"tasks": [{"project": project, "title": f"t{i}"} for i in range(3)]}), 201
    )
    log = ok(api.get("/log", params={"project": project, "limit": 10}))
    created = [e for e in (log["entries"] if isinstance(log, dict) else log) if e["event"] == "task.created"]
    assert sorted(e["summary"].split()[2] for e in created) == added["task_ids"]
