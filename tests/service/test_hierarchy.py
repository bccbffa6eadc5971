"""Parents and children: a parent with open children is a container, completed by its children."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import client_for
from tests.helpers import ok, problem

OPEN = ("pending", "in_progress", "blocked", "in_review", "failed")


def task(api, project: str, title: str, **fields) -> dict:  # type: ignore[no-untyped-def]
    return ok(api.post("/tasks", json={"project": project, "title": title, **fields}), 201)


def status(api, ref: str, new: str, **fields) -> dict:  # type: ignore[no-untyped-def]
    return ok(api.put(f"/tasks/{ref}/status", json={"status": new, **fields}))["updated_task"]


def test_children_are_listed_counted_and_keep_their_parent_open(api, project):
    parent = task(api, project, "epic", key="EPIC")
    a = task(api, project, "a", parent="EPIC")
    b = task(api, project, "b", parent=parent["id"])
    assert a["parent"] == {"id": parent["id"], "key": "EPIC", "status": "pending"}
    shown = ok(api.get("/tasks/EPIC"))
    assert shown["children"] == {"total": 2, "by_status": {"pending": 2}} and a["children"] is None
    listed = ok(api.get("/tasks", params={"parent": "EPIC"}))
    assert [t["title"] for t in listed["tasks"]] == ["a", "b"] and listed["total"] == 2
    # The claim skips the container and hands out its children.
    claimed = [ok(api.post("/tasks/next", json={"project": project, "agent": "w"}))["task"]["title"] for _ in range(2)]
    assert sorted(claimed) == ["a", "b"]
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "w"}))["task"] is None
    status(api, a["id"], "completed")
    body = problem(api.put("/tasks/EPIC/status", json={"status": "completed"}), 409, "OPEN_CHILDREN")
    assert body["open_children"] == [f"{b['key']} (in_progress)"] and b["key"] in body["detail"]
    status(api, b["id"], "cancelled")
    assert ok(api.get("/tasks/EPIC"))["children"]["by_status"] == {"completed": 1, "cancelled": 1}
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "w"}))["task"]["key"] == "EPIC"
    assert status(api, "EPIC", "completed")["status"] == "completed"
    problem(api.post("/tasks", json={"project": project, "title": "late", "parent": "EPIC"}), 409, "CONFLICT")


def test_auto_complete_climbs_the_tree(api, project):
    top = task(api, project, "top", key="TOP", auto_complete=True)
    mid = task(api, project, "mid", key="MID", parent="TOP", auto_complete=True)
    leaf1 = task(api, project, "leaf1", parent="MID")
    leaf2 = task(api, project, "leaf2", parent="MID")
    status(api, leaf1["id"], "completed")
    assert ok(api.get("/tasks/MID"))["status"] == "pending"
    status(api, leaf2["id"], "completed")
    assert ok(api.get("/tasks/MID"))["status"] == "completed"
    assert ok(api.get("/tasks/TOP"))["status"] == "completed" and top["auto_complete"] and mid["auto_complete"]
    entries = ok(api.get("/log", params={"project": project, "type": "task.status", "limit": 10}))["entries"]
    assert [e["actor"] for e in entries[:2]] == ["tracker", "tracker"]


def test_placement_rules_name_the_parent_field(api, project):
    root = task(api, project, "root", key="L1")
    for level in range(2, 9):
        task(api, project, f"level {level}", key=f"L{level}", parent=f"L{level - 1}")
    deep = problem(api.post("/tasks", json={"project": project, "title": "9", "parent": "L8"}), 400, "INVALID_REQUEST")
    assert deep["errors"][0]["field"] == "parent" and "8" in deep["detail"]
    other = task(api, f"{project}-x", "elsewhere")
    wrong = problem(
        api.post("/tasks", json={"project": project, "title": "x", "parent": other["id"]}), 400, "INVALID_REQUEST"
    )
    assert wrong["errors"][0]["field"] == "parent"
    loop = problem(api.patch(f"/tasks/{root['id']}", json={"parent": "L5"}), 400, "INVALID_REQUEST")
    assert loop["errors"][0]["field"] == "parent" and "ancestor" in loop["detail"]
    problem(api.patch("/tasks/L3", json={"parent": "L3"}), 400, "INVALID_REQUEST")
    # Moving a subtree keeps the depth rule: L4..L8 (5 levels) under a new root is fine.
    fresh = task(api, project, "fresh root")
    assert ok(api.patch("/tasks/L4", json={"parent": fresh["id"]}))["parent"]["id"] == fresh["id"]
    assert ok(api.patch("/tasks/L4", json={"parent": None}))["parent"] is None


def test_deleting_a_parent_needs_cascade(api, project):
    task(api, project, "p", key="P")
    task(api, project, "c", key="C", parent="P")
    task(api, project, "g", key="G", parent="C")
    body = problem(api.delete("/tasks/P"), 409, "CONFLICT")
    assert "C" in body["detail"] and "cascade" in body["detail"]
    assert api.delete("/tasks/P", params={"cascade": "true"}).status_code == 204
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 0
    deleted = ok(api.get("/log", params={"project": project, "type": "task.deleted"}))["entries"]
    assert len(deleted) == 3


def test_a_batch_builds_a_tree_all_or_nothing(api, project):
    tree = [
        {"project": project, "title": "epic", "key": "E"},
        {"project": project, "title": "story", "key": "S", "parent": "E"},
        {"project": project, "title": "sub", "parent": "S", "depends_on": ["S"]},
    ]
    added = ok(api.post("/tasks/batch", json={"tasks": tree}), 201)
    assert ok(api.get(f"/tasks/{added['ids'][2]}"))["parent"]["key"] == "S"
    assert ok(api.get("/tasks/E"))["children"]["total"] == 1
    broken = [{**item, "key": f"{item.get('key', 'x')}2"} for item in tree[:2]] + [
        {"project": project, "title": "orphan", "parent": "NOPE"}
    ]
    body = problem(api.post("/tasks/batch", json={"tasks": broken}), 400, "INVALID_REQUEST")
    assert body["errors"][0]["field"] == "parent"
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 3


def test_a_child_finishing_while_its_parent_is_claimed(tracker_url, api_key, api, project):
    """The claim never hands out a parent whose children are open, whatever races it."""
    for round_ in range(10):
        p = f"{project}-{round_}"
        parent = task(api, p, "parent", priority="critical")
        child = task(api, p, "child", parent=parent["id"], priority="low")
        status(api, child["id"], "in_progress", agent="w")

        def finish(child: dict = child) -> int:
            with client_for(tracker_url, api_key) as c:
                return c.put(f"/tasks/{child['id']}/status", json={"status": "completed", "agent": "w"}).status_code

        def claim(p: str = p) -> dict | None:
            with client_for(tracker_url, api_key) as c:
                return ok(c.post("/tasks/next", json={"project": p, "agent": "x"}))["task"]

        with ThreadPoolExecutor(2) as pool:
            finished, claimed = pool.submit(finish), pool.submit(claim)
            assert finished.result() == 200
            got = claimed.result()
        if got is not None:
            assert got["id"] == parent["id"]
            assert not any(s in got["children"]["by_status"] for s in OPEN), got["children"]


def test_completing_a_parent_races_adding_a_child(tracker_url, api_key, api, project):
    for round_ in range(10):
        parent = task(api, project, f"parent {round_}")

        def complete(parent: dict = parent) -> int:
            with client_for(tracker_url, api_key) as c:
                return c.put(f"/tasks/{parent['id']}/status", json={"status": "completed"}).status_code

        def add(parent: dict = parent) -> int:
            with client_for(tracker_url, api_key) as c:
                return c.post(
                    "/tasks", json={"project": project, "title": "new child", "parent": parent["id"]}
                ).status_code

        with ThreadPoolExecutor(2) as pool:
            completed, added = pool.submit(complete), pool.submit(add)
            codes = (completed.result(), added.result())
        assert codes in ((200, 409), (409, 201)), codes
        final = ok(api.get(f"/tasks/{parent['id']}"))
        assert (final["status"] == "completed") == (codes[0] == 200)
        assert (final["children"] is not None) == (codes[1] == 201)
