"""Task endpoints through real HTTP against a real tracker on PostgreSQL."""

from __future__ import annotations

import uuid

from tests.helpers import ok, problem


def create(api, project, **fields):
    return ok(api.post("/tasks", json={"project": project, "title": "t", **fields}), 201)


def test_create_get_and_defaults(api, project):
    task = ok(
        api.post(
            "/tasks",
            json={
                "project": project,
                "title": "Fix BUG-010",
                "priority": "critical",
                "assigned_to": "cc",
                "tags": ["bug", "p1"],
            },
        ),
        201,
    )
    assert task["key"] == task["task_id"] == "TASK-001"
    assert (task["status"], task["priority"], task["project"]) == ("pending", "critical", project)
    assert task["tags"] == ["bug", "p1"] and task["completed_at"] is None
    assert ok(api.get(f"/tasks/{task['id']}")) == task
    assert ok(api.get("/tasks/TASK-001")) == task


def test_spec_001_field_names_and_title_from_description(api, project):
    task = ok(
        api.post(
            "/tasks",
            json={"project_id": project, "task_id": "TASK-046", "description": "Generate HLS-006\nwith the template"},
        ),
        201,
    )
    assert task["key"] == "TASK-046" and task["title"] == "Generate HLS-006"
    # A key chosen by hand moves the TASK counter ahead, so automatic keys never collide with it.
    assert create(api, project)["key"] == "TASK-047"


def test_task_needs_title_or_description(api, project):
    body = problem(api.post("/tasks", json={"project": project}), 400, "INVALID_REQUEST")
    assert "title or a description" in body["detail"]


def test_bad_input_is_400_naming_the_field(api, project):
    body = problem(
        api.post("/tasks", json={"project": project, "title": "x", "priority": "urgent"}), 400, "INVALID_REQUEST"
    )
    assert any(e["field"] == "priority" for e in body["errors"]), body
    body = problem(api.post("/tasks", json={"project": project, "title": "x", "colour": "red"}), 400, "INVALID_REQUEST")
    assert any(e["field"] == "colour" for e in body["errors"]), body
    body = problem(
        api.post("/tasks", json={"project": project, "title": "x", "related_handoff_id": "nope"}),
        400,
        "INVALID_REQUEST",
    )
    assert any(e["field"] == "related_handoff_id" for e in body["errors"]), body
    problem(
        api.post("/tasks", content=b"{not json", headers={"content-type": "application/json"}), 400, "INVALID_REQUEST"
    )
    problem(api.post("/tasks", json=[1, 2]), 400, "INVALID_REQUEST")
    problem(api.get("/tasks", params={"limit": "zero"}), 400, "INVALID_REQUEST")
    problem(api.get("/tasks", params={"status": "finished"}), 400, "INVALID_REQUEST")
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 0  # nothing was stored


def test_duplicate_key_is_409(api, project):
    create(api, project, key="BUG-1")
    body = problem(
        api.post("/tasks", json={"project": project, "title": "again", "key": "BUG-1"}), 409, "DUPLICATE_KEY"
    )
    assert "BUG-1" in body["detail"]


def test_unknown_task_is_404(api):
    body = problem(api.get("/tasks/TASK-999"), 404, "TASK_NOT_FOUND")
    assert "TASK-999" in body["detail"]
    problem(api.get(f"/tasks/{uuid.uuid4()}"), 404, "TASK_NOT_FOUND")
    problem(api.put("/tasks/TASK-999/status", json={"status": "completed"}), 404, "TASK_NOT_FOUND")
    problem(api.delete("/tasks/TASK-999"), 404, "TASK_NOT_FOUND")


def test_key_shared_by_two_projects_needs_project(api, project):
    a = create(api, project, key="X-1")
    b = create(api, project + "-b", key="X-1")
    body = problem(api.get("/tasks/X-1"), 409, "AMBIGUOUS_KEY")
    assert {c["project"] for c in body["candidates"]} == {project, project + "-b"}
    assert ok(api.get("/tasks/X-1", params={"project": project}))["id"] == a["id"]
    assert ok(api.get(f"/tasks/{b['id']}"))["project"] == project + "-b"


def test_list_filters_paging_and_summaries(api, project):
    create(api, project, title="low", priority="low", tags=["x"])
    create(api, project, title="crit", priority="critical", assigned_to="cc")
    create(api, project, title="high", priority="high", tags=["x", "y"], status="blocked")
    create(api, project + "-other", title="elsewhere")
    page = ok(api.get("/tasks", params={"project": project, "limit": 2}))
    assert page["total"] == 3 and page["has_more"] is True
    assert [t["title"] for t in page["tasks"]] == ["crit", "high"]
    assert "description" not in page["tasks"][0]  # lists carry summaries
    rest = ok(api.get("/tasks", params={"project_id": project, "limit": 2, "offset": 2}))
    assert [t["title"] for t in rest["tasks"]] == ["low"] and rest["has_more"] is False
    assert ok(api.get("/tasks", params={"project": project, "tag": "x"}))["total"] == 2
    assert ok(api.get("/tasks", params={"project": project, "assigned_to": "cc"}))["total"] == 1
    assert ok(api.get("/tasks", params={"project": project, "priority": "high"}))["total"] == 1
    assert ok(api.get("/tasks", params={"project": project, "status": "pending,blocked"}))["total"] == 3
    assert ok(api.get("/tasks", params={"project": project, "status": "blocked"}))["total"] == 1
    assert len(ok(api.get("/tasks", params={"limit": 100000}))["tasks"]) <= 200  # capped


def test_patch_fields_and_immutables(api, project):
    task = create(api, project, notes="a")
    patched = ok(
        api.patch(
            f"/tasks/{task['key']}",
            json={"notes": "Started", "priority": "high", "tags": ["z"], "assigned_to": None, "due_date": "2026-12-01"},
        )
    )
    assert (patched["notes"], patched["priority"], patched["tags"]) == ("Started", "high", ["z"])
    assert patched["due_date"].startswith("2026-12-01T00:00:00")
    assert patched["updated_at"] > task["updated_at"]
    problem(api.patch(f"/tasks/{task['key']}", json={"project": "elsewhere"}), 400, "INVALID_REQUEST")
    problem(api.patch(f"/tasks/{task['key']}", json={"title": None}), 400, "INVALID_REQUEST")
    spec_000 = ok(api.patch(f"/tasks/{task['key']}", json={"status": "done", "notes": "Fixed in abc123"}))
    assert spec_000["status"] == "completed" and spec_000["completed_at"]


def test_status_state_machine(api, project):
    key = create(api, project)["key"]
    moved = ok(api.put(f"/tasks/{key}/status", json={"status": "in_progress"}))["updated_task"]
    assert moved["status"] == "in_progress" and moved["lease_expires_at"]
    done = ok(
        api.put(
            f"/tasks/{key}/status", json={"status": "completed", "completion_notes": "Done", "result": {"ok": True}}
        )
    )["updated_task"]
    assert done["completed_at"] and done["completion_notes"] == "Done" and done["result"] == {"ok": True}
    assert done["lease_expires_at"] is None
    # A repeat is a no-op success (agents retry).
    again = ok(api.put(f"/tasks/{key}/status", json={"status": "done"}))["updated_task"]
    assert again["status"] == "completed" and again["completed_at"] == done["completed_at"]
    body = problem(api.put(f"/tasks/{key}/status", json={"status": "in_progress"}), 400, "INVALID_TRANSITION")
    assert body["current_status"] == "completed" and body["requested_status"] == "in_progress"
    assert "completed" in body["detail"] and "in_progress" in body["detail"] and "pending" in body["detail"]
    reopened = ok(api.put(f"/tasks/{key}/status", json={"status": "pending"}))["updated_task"]
    assert reopened["status"] == "pending" and reopened["completed_at"] is None
    problem(api.put(f"/tasks/{key}/status", json={"status": "failed"}), 400, "INVALID_TRANSITION")
    problem(api.put(f"/tasks/{key}/status", json={"status": "bogus"}), 400, "INVALID_REQUEST")


def test_delete(api, project):
    a = create(api, project)
    b = create(api, project, depends_on=[a["key"]])
    assert api.delete(f"/tasks/{a['key']}").status_code == 204
    problem(api.get(f"/tasks/{a['id']}"), 404, "TASK_NOT_FOUND")
    assert ok(api.get(f"/tasks/{b['id']}"))["depends_on"] == []


def test_next_task_by_priority_then_age_and_dependencies(api, project):
    assert ok(api.get("/tasks/next", params={"project": project}))["task"] is None
    first = create(api, project, title="first", priority="high")
    create(api, project, title="later", priority="high")
    crit = create(api, project, title="crit", priority="critical", depends_on=[first["key"]])
    create(api, project, title="low", priority="low")
    # crit waits for its dependency, so the oldest high comes first; peeking takes nothing.
    assert ok(api.get("/tasks/next", params={"project": project}))["task"]["title"] == "first"
    assert ok(api.get("/tasks/next", params={"project": project, "status": "pending"}))["task"]["title"] == "first"
    assert ok(api.get(f"/tasks/{crit['key']}"))["depends_on"] == [
        {"id": first["id"], "key": first["key"], "status": "pending"}
    ]
    ok(api.put(f"/tasks/{first['key']}/status", json={"status": "completed"}))
    assert ok(api.get("/tasks/next", params={"project": project}))["task"]["title"] == "crit"
    problem(api.get("/tasks/next"), 400, "INVALID_REQUEST")


def test_claim_next_and_release(api, project):
    create(api, project, title="mine", assigned_to="bob")
    create(api, project, title="open")
    claimed = ok(api.post("/tasks/next", json={"project": project, "agent": "alice", "lease_seconds": 60}))["task"]
    assert claimed["title"] == "open" and claimed["status"] == "in_progress" and claimed["assigned_to"] == "alice"
    assert claimed["lease_expires_at"]
    # Work assigned to bob is kept for bob.
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "carol"}))["task"] is None
    assert ok(api.post("/tasks/next", json={"project_id": project, "agent": "bob"}))["task"]["title"] == "mine"
    released = ok(api.put(f"/tasks/{claimed['key']}/status", json={"status": "pending"}))["updated_task"]
    assert released["assigned_to"] is None and released["lease_expires_at"] is None
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "carol"}))["task"]["key"] == claimed["key"]
    problem(api.post("/tasks/next", json={"project": project}), 400, "INVALID_REQUEST")


def test_dependency_rules(api, project):
    a = create(api, project)
    b = create(api, project, depends_on=[a["id"]])
    body = problem(
        api.post("/tasks", json={"project": project, "title": "x", "depends_on": ["TASK-404"]}), 400, "INVALID_REQUEST"
    )
    assert "TASK-404" in body["detail"]
    problem(api.patch(f"/tasks/{a['key']}", json={"depends_on": [b["key"]]}), 409, "DEPENDENCY_CYCLE")
    problem(api.patch(f"/tasks/{a['key']}", json={"depends_on": [a["key"]]}), 400, "INVALID_REQUEST")
    assert ok(api.patch(f"/tasks/{b['key']}", json={"depends_on": []}))["depends_on"] == []


def test_batch_all_or_nothing(api, project):
    # spec 001 scenario 6
    out = ok(
        api.post(
            "/tasks/batch",
            json={
                "tasks": [
                    {"task_id": "TASK-046", "project_id": project, "description": "Generate HLS-006"},
                    {
                        "task_id": "TASK-047",
                        "project_id": project,
                        "description": "Generate HLS-007",
                        "depends_on": ["TASK-046"],
                    },
                ]
            },
        ),
        201,
    )
    assert out["success"] is True and out["tasks_added"] == 2 and out["task_ids"] == ["TASK-046", "TASK-047"]
    assert len(out["ids"]) == 2
    bad = api.post(
        "/tasks/batch",
        json={
            "tasks": [
                {"project": project, "title": "would be fine"},
                {"project": project, "title": "dup", "key": "TASK-046"},
            ]
        },
    )
    problem(bad, 409, "DUPLICATE_KEY")
    problem(
        api.post("/tasks/batch", json={"tasks": [{"project": project, "title": "ok"}, {"project": project}]}),
        400,
        "INVALID_REQUEST",
    )
    problem(api.post("/tasks/batch", json={"tasks": []}), 400, "INVALID_REQUEST")
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 2


def test_mcp_prefix_serves_the_same_tasks(api, project):
    task = ok(api.post("/mcp/tasks", json={"project": project, "title": "via spec 000"}), 201)
    assert ok(api.get(f"/tasks/{task['id']}"))["title"] == "via spec 000"
    assert ok(api.get("/mcp/tasks", params={"project": project}))["total"] == 1
    assert ok(api.patch(f"/mcp/tasks/{task['id']}", json={"status": "in_progress"}))["status"] == "in_progress"
    assert api.delete(f"/mcp/tasks/{task['id']}").status_code == 204


def test_unknown_route_and_method_are_problems(api):
    problem(api.get("/nope"), 404, "NOT_FOUND")
    problem(api.post("/health"), 405, "METHOD_NOT_ALLOWED")


def test_values_postgresql_cannot_store_are_400_not_500(api, project):
    body = problem(api.post("/tasks", json={"project": project, "title": "a\u0000b"}), 400, "INVALID_REQUEST")
    assert "NUL" in body["detail"] and "title" in body["detail"]
    problem(
        api.post("/tasks", json={"project": project, "title": "x", "result": {"k": ["\u0000"]}}), 400, "INVALID_REQUEST"
    )
    problem(api.get("/tasks", params={"assigned_to": "a\u0000"}), 400, "INVALID_REQUEST")
    problem(api.get("/tasks", params={"offset": 10**20}), 400, "INVALID_REQUEST")
    problem(
        api.post("/tasks/next", json={"project": project, "agent": "a", "lease_seconds": 10**30}),
        400,
        "INVALID_REQUEST",
    )
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 0


def test_q_finds_tasks_by_title_or_key_in_any_case_with_wildcards_as_text(api, project):
    made = [
        ok(api.post("/tasks", json={"project": project, "title": title}), 201)
        for title in ("Fix the Parser", "parser: 100% coverage", "Write docs", "snake_case names")
    ]

    def keys(q: str) -> list[str]:
        return [t["key"] for t in ok(api.get("/tasks", params={"project": project, "q": q}))["tasks"]]

    assert sorted(keys("PARSER")) == sorted([made[0]["key"], made[1]["key"]])
    assert keys("100%") == [made[1]["key"]]  # % and _ are the text itself, not LIKE wildcards
    assert keys("e_c") == [made[3]["key"]]
    assert keys("%") == [made[1]["key"]]
    assert keys(made[2]["key"].lower()) == [made[2]["key"]]
    page = ok(api.get("/tasks", params={"project": project, "q": "parser", "limit": 1}))
    assert page["total"] == 2 and page["has_more"] is True
