"""Who holds a task: the first agent to start it, until its lease lapses; nobody takes it silently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import client_for
from tests.helpers import ok, problem


def test_starting_a_task_takes_it_and_a_second_agent_is_refused(api, project):
    task = ok(api.post("/tasks", json={"project": project, "title": "one holder"}), 201)
    url = f"/tasks/{task['id']}/status"
    first = ok(api.put(url, json={"status": "in_progress", "agent": "alice"}))["updated_task"]
    assert first["assigned_to"] == "alice" and first["lease_expires_at"]
    body = problem(api.put(url, json={"status": "in_progress", "agent": "bob"}), 409, "CONFLICT")
    assert "alice" in body["detail"] and body["assigned_to"] == "alice"
    problem(api.put(url, json={"status": "completed", "agent": "bob"}), 409, "CONFLICT")
    assert ok(api.put(url, json={"status": "in_progress", "agent": "alice"}))["updated_task"]["assigned_to"] == "alice"
    # A pending task assigned to someone is theirs to start.
    mine = ok(api.post("/tasks", json={"project": project, "title": "for carol", "assigned_to": "carol"}), 201)
    problem(api.put(f"/tasks/{mine['id']}/status", json={"status": "in_progress", "agent": "bob"}), 409, "CONFLICT")
    ok(api.put(f"/tasks/{mine['id']}/status", json={"status": "in_progress", "agent": "carol"}))


def test_two_agents_racing_to_start_a_task_one_wins(tracker_url, api_key, api, project):
    for round_ in range(10):
        task = ok(api.post("/tasks", json={"project": project, "title": f"race {round_}"}), 201)

        def start(agent: str, task: dict = task) -> int:
            with client_for(tracker_url, api_key) as c:
                return c.put(f"/tasks/{task['id']}/status", json={"status": "in_progress", "agent": agent}).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(start, ["a", "b"]))
        assert codes == [200, 409], codes
        assert ok(api.get(f"/tasks/{task['id']}"))["assigned_to"] in ("a", "b")


def test_reassigning_a_held_task_is_for_admins(api, make_key, tracker_url, project):
    task = ok(api.post("/tasks", json={"project": project, "title": "held"}), 201)
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "in_progress", "agent": "alice"}))
    body = problem(api.patch(f"/tasks/{task['id']}", json={"assigned_to": "bob"}), 409, "CONFLICT")
    assert "alice" in body["detail"]
    assert ok(api.get(f"/tasks/{task['id']}"))["assigned_to"] == "alice"
    ok(api.patch(f"/tasks/{task['id']}", json={"assigned_to": "alice", "notes": "same holder is fine"}))
    with client_for(tracker_url, make_key("admin")) as admin:
        assert ok(admin.patch(f"/tasks/{task['id']}", json={"assigned_to": "bob"}))["assigned_to"] == "bob"
    # Unheld tasks are assigned freely.
    free = ok(api.post("/tasks", json={"project": project, "title": "free"}), 201)
    assert ok(api.patch(f"/tasks/{free['id']}", json={"assigned_to": "dave"}))["assigned_to"] == "dave"
