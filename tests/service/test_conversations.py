"""Conversations (seed 003): chat turns stored in the order the database gives them, even from
concurrent appenders, once per Idempotency-Key, linked to the tasks they led to, per tenant."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import client_for
from tests.helpers import ok, problem


def test_a_conversation_keeps_its_turns_in_order_and_pages_them(api):
    conv = ok(api.post("/conversations", json={"title": "Plan the sprint", "metadata": {"user": "u1"}}), 201)
    assert conv["message_count"] == 0 and conv["messages"] == []
    one = ok(api.post(f"/conversations/{conv['id']}/messages", json={"role": "user", "content": "Hi"}), 201)
    assert [m["seq"] for m in one["messages"]] == [1]
    batch = {
        "messages": [
            {"role": "assistant", "content": "", "tool_calls": [{"name": "add_task", "arguments": {"title": "x"}}]},
            {"role": "tool", "content": '{"key": "TASK-001"}'},
            {"role": "assistant", "content": "Done."},
        ]
    }
    more = ok(api.post(f"/conversations/{conv['id']}/messages/batch", json=batch), 201)
    assert [m["seq"] for m in more["messages"]] == [2, 3, 4]
    assert more["messages"][0]["tool_calls"] == [{"name": "add_task", "arguments": {"title": "x"}}]
    first = ok(api.get(f"/conversations/{conv['id']}", params={"limit": 3}))
    assert [m["content"] for m in first["messages"]] == ["Hi", "", '{"key": "TASK-001"}']
    assert first["next_after"] == 3 and first["message_count"] == 4 and first["metadata"] == {"user": "u1"}
    rest = ok(api.get(f"/conversations/{conv['id']}", params={"after": first["next_after"]}))
    assert [m["seq"] for m in rest["messages"]] == [4] and rest["next_after"] is None
    listed = ok(api.get("/conversations"))
    assert listed["conversations"][0]["id"] == conv["id"] and listed["total"] >= 1


def test_concurrent_appends_never_share_a_number_nor_split_a_batch(api):
    conv = ok(api.post("/conversations", json={}), 201)

    def append(writer: int) -> list[int]:
        seqs = []
        for turn in range(5):
            body = {"messages": [{"role": "user", "content": f"w{writer} t{turn} m{i}"} for i in range(3)]}
            appended = ok(api.post(f"/conversations/{conv['id']}/messages/batch", json=body), 201)
            seqs += [m["seq"] for m in appended["messages"]]
        return seqs

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(append, range(8)))
    assert sorted(s for seqs in results for s in seqs) == list(range(1, 121))
    stored = ok(api.get(f"/conversations/{conv['id']}", params={"limit": 200}))["messages"]
    for i in range(0, 120, 3):  # each batch of three is contiguous and in its own order
        contents = [stored[i + k]["content"] for k in range(3)]
        assert [c.rsplit(" ", 1)[0] for c in contents] == [contents[0].rsplit(" ", 1)[0]] * 3
        assert [c.rsplit(" ", 1)[1] for c in contents] == ["m0", "m1", "m2"]
    # Each writer's own turns come in the order it sent them.
    for writer in range(8):
        turns = [m["content"].split()[1] for m in stored if m["content"].startswith(f"w{writer} ")]
        assert turns == sorted(turns, key=lambda t: int(t[1:]))


def test_a_retried_turn_is_stored_once(api):
    conv = ok(api.post("/conversations", json={}), 201)
    headers = {"Idempotency-Key": "turn-7"}
    body = {"role": "user", "content": "only once"}
    first = ok(api.post(f"/conversations/{conv['id']}/messages", json=body, headers=headers), 201)
    again = ok(api.post(f"/conversations/{conv['id']}/messages", json=body, headers=headers), 201)
    assert again == first
    assert ok(api.get(f"/conversations/{conv['id']}"))["message_count"] == 1


def test_a_turn_links_the_tasks_and_handoffs_it_led_to(api, project):
    conv = ok(api.post("/conversations", json={"title": "ask"}), 201)
    task = ok(api.post("/tasks", json={"project": project, "title": "made in chat"}), 201)
    handoff = ok(
        api.post("/handoffs", json={"project": project, "task": "t", "direction": "ai_to_cc", "content": "x"}), 201
    )
    turn = {"role": "assistant", "content": "Created it.", "tasks": [task["key"]], "handoffs": [handoff["id"]]}
    stored = ok(api.post(f"/conversations/{conv['id']}/messages", json=turn), 201)["messages"][0]
    assert stored["tasks"] == [task["id"]] and stored["handoffs"] == [handoff["id"]]
    assert ok(api.get(f"/tasks/{task['id']}"))["conversation_id"] == conv["id"]
    bad = problem(
        api.post(f"/conversations/{conv['id']}/messages", json={**turn, "tasks": ["TASK-999999"]}),
        400,
        "INVALID_REQUEST",
    )
    assert "tasks.0" in bad["detail"]
    problem(
        api.post(
            f"/conversations/{conv['id']}/messages/batch",
            json={"messages": [{"role": "user", "content": "x", "handoffs": ["6f2b7c1e-5d0a-4a57-9a43-4c1f0c6f5b11"]}]},
        ),
        400,
        "INVALID_REQUEST",
    )
    # Deleting the conversation keeps the task, without the link.
    assert api.delete(f"/conversations/{conv['id']}").status_code == 204
    problem(api.get(f"/conversations/{conv['id']}"), 404, "CONVERSATION_NOT_FOUND")
    assert ok(api.get(f"/tasks/{task['id']}"))["conversation_id"] is None


def test_bad_turns_are_refused_and_nothing_is_stored(api):
    conv = ok(api.post("/conversations", json={}), 201)
    url = f"/conversations/{conv['id']}/messages"
    problem(api.post(url, json={"role": "robot", "content": "x"}), 400, "INVALID_REQUEST")
    problem(api.post(f"{url}/batch", json={"messages": []}), 400, "INVALID_REQUEST")
    problem(api.post(url, json={"messages": [{"role": "user", "content": "x"}]}), 400, "INVALID_REQUEST")
    problem(api.post(url, json={"role": "user", "content": "x", "extra": 1}), 400, "INVALID_REQUEST")
    problem(api.post(url, json={"role": "user"}), 400, "INVALID_REQUEST")
    problem(
        api.post("/conversations/not-a-uuid/messages", json={"role": "user", "content": "x"}), 400, "INVALID_REQUEST"
    )
    assert ok(api.get(f"/conversations/{conv['id']}"))["message_count"] == 0


def test_conversations_belong_to_their_tenant(tracker_url, api, make_key):
    conv = ok(api.post("/conversations", json={"title": "mine"}), 201)
    with client_for(tracker_url, make_key("write", tenant_name="conv-other")) as other:
        problem(other.get(f"/conversations/{conv['id']}"), 404, "CONVERSATION_NOT_FOUND")
        problem(
            other.post(f"/conversations/{conv['id']}/messages", json={"role": "user", "content": "x"}),
            404,
            "CONVERSATION_NOT_FOUND",
        )
        problem(other.delete(f"/conversations/{conv['id']}"), 404, "CONVERSATION_NOT_FOUND")
        assert all(c["id"] != conv["id"] for c in ok(other.get("/conversations"))["conversations"])
    assert ok(api.get(f"/conversations/{conv['id']}"))["title"] == "mine"
