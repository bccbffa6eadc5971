"""The one-statement batch path gives what creating the tasks one by one would."""

from __future__ import annotations

from tests.helpers import ok, problem


def test_batch_keys_come_from_the_counter_and_released_ids_from_allocations(api, project):
    reserved = ok(api.post("/ids/reserve", json={"type": "TASK", "count": 4, "project_id": project}), 201)
    ok(api.post(f"/ids/reservations/{reserved['reservation_id']}/release", json={"keep": ["TASK-002"]}))
    # Released: TASK-001, TASK-003, TASK-004; the counter is at 4. Automatic keys never take released
    # IDs (a key given by hand may hold one); explicit allocations still do, lowest first.
    added = ok(
        api.post("/tasks/batch", json={"tasks": [{"project": project, "title": f"t{i}"} for i in range(3)]}), 201
    )
    assert added["task_ids"] == ["TASK-005", "TASK-006", "TASK-007"]
    listed = ok(api.get("/tasks", params={"project": project, "limit": 50}))
    assert sorted(t["key"] for t in listed["tasks"]) == added["task_ids"]
    assert ok(api.post("/ids/next", json={"type": "TASK", "project_id": project}), 201)["next_id"] == "TASK-001"


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


def _every_field(project: str, handoff_id: str, **fields) -> dict:
    return {
        "project": project,
        "title": "Full task",
        "description": "# Full task\nwith every field",
        "priority": "high",
        "assigned_to": "agent-a",
        "tags": ["x", "y"],
        "notes": "n",
        "completion_notes": "c",
        "inputs": {"nested": [1, 2.5, None, {"k": "v"}], "flag": True},
        "outputs": ["a", 1],
        "result": "a plain string",
        "due_date": "2026-12-01T10:00:00+02:00",
        "related_handoff_id": handoff_id,
        "type": "Code",
        **fields,
    }


def test_batch_rows_equal_single_creation_field_for_field(api, project):
    from tests.service.test_handoffs import handoff

    h = handoff(api, project)["id"]
    varying = ("id", "key", "task_id", "project", "created_at", "updated_at", "completed_at", "lease_expires_at")
    for status in ("pending", "in_progress", "completed"):
        alone = ok(api.post("/tasks", json=_every_field(project, h, status=status)), 201)
        added = ok(api.post("/tasks/batch", json={"tasks": [_every_field(f"{project}-b", h, status=status)]}), 201)
        batched = ok(api.get(f"/tasks/{added['ids'][0]}"))
        assert {k: v for k, v in batched.items() if k not in varying} == {
            k: v for k, v in alone.items() if k not in varying
        }
        assert (alone["type"], alone["priority"]) == ("code", "high")  # both lowered as documented
        for name in ("completed_at", "lease_expires_at"):
            assert (batched[name] is None) == (alone[name] is None), (status, name)
    minimal = ok(api.post("/tasks/batch", json={"tasks": [{"project": project, "title": "m"}]}), 201)
    task = ok(api.get(f"/tasks/{minimal['ids'][0]}"))
    assert (task["status"], task["priority"], task["tags"], task["inputs"], task["type"]) == (
        "pending",
        "medium",
        [],
        None,
        None,
    )


def test_batch_across_projects_numbers_the_tenant_in_order(api, project):
    other = f"{project}-2"
    ok(api.post("/tasks", json={"project": other, "title": "before"}), 201)  # the tenant is at TASK-001
    items = [{"project": p, "title": f"t{i}"} for i, p in enumerate([project, other, project, other, project])]
    added = ok(api.post("/tasks/batch", json={"tasks": items}), 201)
    assert added["task_ids"] == ["TASK-002", "TASK-003", "TASK-004", "TASK-005", "TASK-006"]
    for task_id, key, item in zip(added["ids"], added["task_ids"], items, strict=True):
        got = ok(api.get(f"/tasks/{task_id}"))
        assert (got["key"], got["project"], got["title"]) == (key, item["project"], item["title"])


def test_batch_log_rows_are_in_batch_order(api, project):
    added = ok(
        api.post("/tasks/batch", json={"tasks": [{"project": project, "title": f"t{i}"} for i in range(6)]}), 201
    )
    log = ok(api.get("/log", params={"project": project, "limit": 10}))
    entries = log["entries"] if isinstance(log, dict) else log
    created = [e["summary"].split()[2] for e in entries if e["event"] == "task.created"]
    assert list(reversed(created)) == added["task_ids"]  # the log lists newest first
