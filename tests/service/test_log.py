"""The activity log: every kind of mutation, newest first, filtered by project, type and time."""

from __future__ import annotations

from tests.conftest import client_for
from tests.helpers import ok


def test_log_shows_every_kind_of_mutation_newest_first(api, tracker_url, make_key, project):
    task = ok(api.post("/tasks", json={"project": project, "title": "Fix BUG-010"}), 201)
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "in_progress"}))
    ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)
    h = ok(
        api.post("/handoffs", json={"project": project, "task": "report", "direction": "cc_to_ai", "content": "# hi"}),
        201,
    )
    ok(api.patch(f"/handoffs/{h['id']}", json={"status": "read"}))
    entries = ok(api.get("/mcp/log", params={"project": project, "limit": 50}))["entries"]
    assert [e["event"] for e in entries] == [
        "handoff.status",
        "handoff.created",
        "id.allocated",
        "task.status",
        "task.created",
    ]
    assert [e["type"] for e in entries] == ["handoff", "handoff", "id", "task", "task"]
    created = entries[-1]
    assert created["summary"] == "Task created: TASK-001 Fix BUG-010" and created["id"] == task["id"]
    assert set(created) == {"timestamp", "type", "event", "project", "summary", "id", "actor", "event_id"}
    assert entries[1]["summary"] == "cc → claude_ai: report"
    assert [e["event"] for e in ok(api.get("/log", params={"project": project, "type": "task"}))["entries"]] == [
        "task.status",
        "task.created",
    ]
    assert len(ok(api.get("/log", params={"project": project, "type": "task.created"}))["entries"]) == 1
    assert len(ok(api.get("/log", params={"project": project, "limit": 2}))["entries"]) == 2
    assert ok(api.get("/log", params={"project": project, "since": "2999-01-01T00:00:00Z"}))["entries"] == []
    # Key changes are logged too (they belong to no project).
    assert "key.created" in [e["event"] for e in ok(api.get("/log", params={"type": "key"}))["entries"]]
    with client_for(tracker_url, make_key(tenant_name="other-" + project)) as other:
        assert ok(other.get("/log", params={"project": project}))["entries"] == []
