"""Automatic task keys never collide with a key in use and are never ambiguous within a tenant.

TASK IDs are the tenant's, not a project's: `PUT /tasks/TASK-001/status` names one task however
many projects there are, and a key given by hand takes its number out of the automatic sequence.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import client_for
from tests.helpers import ok, problem


def test_automatic_keys_are_unique_across_projects(api, project):
    first = ok(api.post("/tasks", json={"project": project, "title": "one"}), 201)
    other = ok(api.post("/task/delegate", json={"type": "code", "prompt": "delegated work"}))  # project "delegated"
    second = ok(api.post("/tasks", json={"project": f"{project}-b", "title": "two"}), 201)
    keys = [first["key"], ok(api.get(f"/task/{other['task_id']}/status"))["key"], second["key"]]
    assert keys == ["TASK-001", "TASK-002", "TASK-003"]
    # The README's example works with no project named.
    done = ok(api.put("/tasks/TASK-001/status", json={"status": "completed", "completion_notes": "Done"}))
    assert done["updated_task"]["id"] == first["id"]
    counters = ok(api.get("/ids", params={"project": project}))["counters"]
    assert counters == [
        {
            "project": None,
            "scope": "tenant",
            "type": "TASK",
            "last_value": 3,
            "last_id": "TASK-003",
            "next_id": "TASK-004",
        }
    ]


def test_a_released_id_taken_by_hand_never_blocks_automatic_keys(api, project):
    reserved = ok(api.post("/ids/reserve", json={"type": "TASK", "count": 3, "project_id": project}), 201)
    ok(api.post(f"/ids/reservations/{reserved['reservation_id']}/release"))  # TASK-001..003 back in the pool
    ok(api.post("/tasks", json={"project": project, "title": "by hand", "key": "TASK-002"}), 201)
    for i in range(3):  # used to be 409 DUPLICATE_KEY on every automatic create until someone burned TASK-002
        assert ok(api.post("/tasks", json={"project": project, "title": f"auto {i}"}), 201)["key"] == f"TASK-00{4 + i}"
    # Released IDs still serve explicit allocations, except the one a task holds now.
    allocated = [
        ok(api.post("/ids/next", json={"type": "TASK", "project_id": project}), 201)["next_id"] for _ in range(3)
    ]
    assert allocated == ["TASK-001", "TASK-003", "TASK-007"]


def test_releasing_ids_whose_keys_are_in_use_keeps_them_out_of_the_pool(api, project):
    reserved = ok(api.post("/ids/reserve", json={"type": "TASK", "count": 2, "project_id": project}), 201)
    ok(api.post("/tasks", json={"project": project, "title": "from the reservation", "key": "TASK-001"}), 201)
    ok(api.post(f"/ids/reservations/{reserved['reservation_id']}/release"))  # forgot to keep TASK-001
    assert ok(api.get("/ids/next", params={"type": "TASK", "project": project}))["next_id"] == "TASK-002"
    assert ok(api.post("/ids/next", json={"type": "TASK", "project_id": project}), 201)["next_id"] == "TASK-002"
    assert ok(api.post("/ids/next", json={"type": "TASK", "project_id": project}), 201)["next_id"] == "TASK-003"


def test_a_hand_given_task_key_is_new_in_the_tenant(api, project):
    ok(api.post("/tasks", json={"project": project, "title": "a", "key": "TASK-050"}), 201)
    body = problem(
        api.post("/tasks", json={"project": f"{project}-b", "title": "b", "key": "TASK-050"}), 409, "DUPLICATE_KEY"
    )
    assert project in body["detail"]
    batch = {
        "tasks": [
            {"project": project, "title": "c", "key": "TASK-060"},
            {"project": f"{project}-b", "title": "d", "key": "TASK-060"},
        ]
    }
    problem(api.post("/tasks/batch", json=batch), 409, "DUPLICATE_KEY")
    # Keys of other forms stay per project, as before.
    ok(api.post("/tasks", json={"project": project, "title": "e", "key": "SPEC-1"}), 201)
    ok(api.post("/tasks", json={"project": f"{project}-b", "title": "f", "key": "SPEC-1"}), 201)
    problem(api.get("/tasks/SPEC-1"), 409, "AMBIGUOUS_KEY")
    assert ok(api.post("/tasks", json={"project": project, "title": "g"}), 201)["key"] == "TASK-051"


def test_racing_automatic_and_hand_given_keys_never_collide(tracker_url, make_key):
    key = make_key("write")
    projects = [f"race-{uuid.uuid4().hex[:6]}" for _ in range(4)]

    def create(i: int) -> tuple[int, str | None]:
        project = projects[i % len(projects)]
        with client_for(tracker_url, key) as c:
            if i % 5 == 0:  # hand-given keys in the range the automatic ones are passing through
                resp = c.post("/tasks", json={"project": project, "title": f"h{i}", "key": f"TASK-{i + 3:03d}"})
            elif i % 7 == 0:
                items = [{"project": projects[(i + j) % 4], "title": f"b{i}-{j}"} for j in range(3)]
                resp = c.post("/tasks/batch", json={"tasks": items})
            else:
                resp = c.post("/tasks", json={"project": project, "title": f"a{i}"})
        return resp.status_code, resp.text

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(80)))
    assert all(status in (201, 409) for status, _ in results), [r for r in results if r[0] not in (201, 409)]
    refused = [text for status, text in results if status == 409]
    assert all("DUPLICATE_KEY" in text for text in refused), refused
    with client_for(tracker_url, key) as c:
        keys = [t["key"] for t in ok(c.get("/tasks", params={"limit": 200}))["tasks"]]
        automatic_creates = sum(1 for i in range(80) if i % 5) + 2 * sum(1 for i in range(80) if i % 5 and i % 7 == 0)
        assert len(keys) == len(set(keys)), "a key names two tasks"
        assert len(keys) >= automatic_creates, (len(keys), automatic_creates)
