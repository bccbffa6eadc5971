"""Every tool and resource through a real MCP client: the HTTP call it makes and what it returns."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
import responses
from mcp import Client
from mcp.shared.exceptions import MCPError
from responses import matchers

from mcp_tools.client import TrackerClient
from mcp_tools.server import build_server

from .bridge_support import URL, ToolCall, error_text, problem, task_json

# The tracker's shapes: a full handoff (POST, GET one, PATCH) and a list item.
HANDOFF = {
    "id": "3c0f4b8e-1d2a-4e5f-8a9b-0c1d2e3f4a5b",
    "project": "ArtForge",
    "task": "sprint3-status-report",
    "from_agent": "cc",
    "to_agent": "claude_ai",
    "direction": "cc_to_ai",
    "status": "pending",
    "content": "# Status\n\nAll green.",
    "metadata": None,
    "response_to": None,
    "expires_at": None,
    "created_at": "2026-02-07T15:00:00Z",
    "updated_at": "2026-02-07T15:00:00Z",
    "public_url": f"{URL}/handoffs/3c0f4b8e-1d2a-4e5f-8a9b-0c1d2e3f4a5b/content",
}
HANDOFF_ITEM = {
    **{k: v for k, v in HANDOFF.items() if k not in ("content", "metadata", "public_url")},
    "summary": "Status",
    "size": 20,
}


def summary(task: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "key", "project", "title", "status", "priority", "assigned_to", "tags", "due_date", "updated_at")
    return {k: task[k] for k in keys}


# Tasks


def test_claiming_posts_the_agent_with_an_idempotency_key(http: responses.RequestsMock, call: ToolCall) -> None:
    claimed = task_json(status="in_progress", assigned_to="cc", lease_expires_at="2026-02-07T16:00:00Z")
    route = http.post(
        f"{URL}/tasks/next",
        json={"task": claimed},
        match=[matchers.json_params_matcher({"project": "p", "agent": "cc"})],
    )

    result = call("get_next_task", project_id="p", claim=True, agent="cc")

    assert result.structured_content["task"]["status"] == "in_progress"
    assert result.structured_content["task"]["assigned_to"] == "cc"
    assert route.calls[0].request.headers["Idempotency-Key"]


def test_claiming_without_an_agent_is_refused_before_any_request(http: responses.RequestsMock, call: ToolCall) -> None:
    result = call("get_next_task", project_id="p", claim=True)

    assert error_text(result, "get_next_task") == (
        "agent is required when claim=true: pass your agent name, e.g. agent='cc'"
    )
    assert len(http.calls) == 0


def test_peeking_for_an_agent_passes_it_along(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.get(f"{URL}/tasks/next", json={"task": None})

    call("get_next_task", project_id="p", status_filter="blocked", agent="cc")

    assert route.calls[0].request.url == f"{URL}/tasks/next?project=p&status=blocked&agent=cc"


def test_list_tasks_pages_with_a_cursor_that_keeps_the_filters(http: responses.RequestsMock, call: ToolCall) -> None:
    task = task_json()
    first = http.get(
        f"{URL}/tasks",
        json={"tasks": [summary(task)], "total": 3, "has_more": True},
        match=[
            matchers.query_param_matcher(
                {"project": "p", "status": "pending,blocked", "tag": "sdlc", "limit": "1", "offset": "0"}
            )
        ],
    )
    page = call("list_tasks", project_id="p", status="pending,blocked", tag="sdlc", limit=1).structured_content
    assert first.call_count == 1
    assert page["total"] == 3 and page["tasks"][0]["key"] == "TASK-051"
    assert "description" not in page["tasks"][0] and "has_more" not in page

    # The cursor carries the filters: the next page asks for the same query, further on.
    second = http.get(
        f"{URL}/tasks",
        json={"tasks": [summary(task_json("TASK-052"))], "total": 3, "has_more": False},
        match=[
            matchers.query_param_matcher(
                {"project": "p", "status": "pending,blocked", "tag": "sdlc", "limit": "5", "offset": "1"}
            )
        ],
    )
    rest = call("list_tasks", cursor=page["next_cursor"], limit=5).structured_content
    assert second.call_count == 1
    assert rest["tasks"][0]["key"] == "TASK-052" and "next_cursor" not in rest


def test_list_tasks_last_page_has_no_next_cursor(http: responses.RequestsMock, call: ToolCall) -> None:
    http.get(f"{URL}/tasks", json={"tasks": [], "total": 0, "has_more": False})

    assert call("list_tasks").structured_content == {"tasks": [], "total": 0}


@pytest.mark.parametrize("cursor", ["not a cursor", "e30", "eyJvIjotMSwicSI6e319"])  # garbage, {}, offset -1
def test_a_malformed_cursor_is_refused_with_what_to_do(
    http: responses.RequestsMock, call: ToolCall, cursor: str
) -> None:
    result = call("list_tasks", cursor=cursor)

    assert result.is_error
    assert "Invalid cursor: pass next_cursor exactly as the previous page returned it" in error_text(
        result, "list_tasks"
    )
    assert not http.calls


def test_a_cursor_refuses_other_filters(http: responses.RequestsMock, call: ToolCall) -> None:
    http.get(f"{URL}/tasks", json={"tasks": [summary(task_json())], "total": 2, "has_more": True})
    cursor = call("list_tasks", project_id="p", limit=1).structured_content["next_cursor"]

    same = call("list_tasks", project_id="p", cursor=cursor)
    other = call("list_tasks", project_id="q", cursor=cursor)

    assert not same.is_error
    assert other.is_error and "The cursor continues another query (project differ)" in error_text(other, "list_tasks")


def test_a_page_is_cut_to_fit_the_answer_budget(http: responses.RequestsMock, call: ToolCall) -> None:
    # 50 summaries of ~400 characters each: about 20,000, so the page stops near 8,000.
    tasks = [summary(task_json(f"TASK-{n:03}", title="x" * 250)) for n in range(50)]
    http.get(f"{URL}/tasks", json={"tasks": tasks, "total": 80, "has_more": True})

    result = call("list_tasks", project_id="p")
    page = result.structured_content

    assert 10 < len(page["tasks"]) < 50
    assert len(json.dumps(page)) <= 8_000
    cursor = page["next_cursor"]
    http.get(
        f"{URL}/tasks",
        json={"tasks": [], "total": 80, "has_more": False},
        match=[matchers.query_param_matcher({"project": "p", "limit": "50", "offset": str(len(page["tasks"]))})],
    )
    assert not call("list_tasks", cursor=cursor).is_error


def test_a_key_two_projects_share_is_picked_by_its_uuid(http: responses.RequestsMock, call: ToolCall) -> None:
    candidates = [{"id": "u1", "project": "a"}, {"id": "u2", "project": "b"}]
    http.get(f"{URL}/tasks/TASK-051", **problem(409, "AMBIGUOUS_KEY", "Ambiguous task key", "x", candidates=candidates))
    route = http.get(f"{URL}/tasks/u2", json=task_json())

    refused = call("get_task", task_id="TASK-051")
    result = call("get_task", task_id="u2")

    assert error_text(refused, "get_task") == (
        "Task Tracking API error: 409 - TASK-051 names tasks in several projects; pass the UUID of the one you "
        "mean as task_id (candidates: u1 (project a), u2 (project b))"
    )
    assert route.call_count == 1
    assert result.structured_content["key"] == "TASK-051"
    assert result.structured_content["inputs"] == {"prd": "PRD-006"}


def test_update_task_patches_only_the_given_fields(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.patch(
        f"{URL}/tasks/TASK-051",
        json=task_json(notes="started", tags=["a", "b"]),
        match=[matchers.json_params_matcher({"notes": "started", "tags": ["a", "b"]})],
    )

    result = call("update_task", task_id="TASK-051", notes="started", tags=["a", "b"])

    assert route.call_count == 1
    assert route.calls[0].request.headers["Idempotency-Key"]
    # The answer says where the task stands, not every field again (get_task has them).
    assert result.structured_content["tags"] == ["a", "b"] and "notes" not in result.structured_content


def test_update_task_with_nothing_to_change_is_refused(http: responses.RequestsMock, call: ToolCall) -> None:
    result = call("update_task", task_id="TASK-051")

    assert error_text(result, "update_task") == "Nothing to update: pass at least one field to change."
    assert len(http.calls) == 0


def test_update_task_status_sends_the_result(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.put(
        f"{URL}/tasks/TASK-051/status",
        json={"updated_task": task_json(status="failed", result={"exit": 1}, completed_at="2026-02-07T16:00:00Z")},
        match=[matchers.json_params_matcher({"status": "failed", "result": {"exit": 1}})],
    )

    result = call("update_task_status", task_id="TASK-051", status="failed", result={"exit": 1})

    assert route.call_count == 1
    state = result.structured_content
    assert state["status"] == "failed" and state["completed_at"] == "2026-02-07T16:00:00Z"
    assert state["key"] == state["task_id"] == "TASK-051" and "result" not in state


def test_update_task_status_reports_an_invalid_transition(http: responses.RequestsMock, call: ToolCall) -> None:
    detail = "from completed a task can move to: pending; reopen it with status=pending first, then set in_progress"
    http.put(f"{URL}/tasks/TASK-051/status", **problem(400, "INVALID_TRANSITION", "Invalid status transition", detail))

    result = call("update_task_status", task_id="TASK-051", status="in_progress")

    assert error_text(result, "update_task_status") == f"Invalid status transition: {detail}"


def test_update_task_status_can_name_the_reporting_agent(http: responses.RequestsMock, call: ToolCall) -> None:
    detail = (
        "task TASK-051 is held by b; a cannot change it (its lease may have lapsed and the task been taken by "
        "another agent)"
    )
    route = http.put(
        f"{URL}/tasks/TASK-051/status",
        match=[matchers.json_params_matcher({"status": "completed", "agent": "a"})],
        **problem(409, "CONFLICT", "Conflict", detail, assigned_to="b"),
    )

    result = call("update_task_status", task_id="TASK-051", status="completed", agent="a")

    assert route.call_count == 1
    assert error_text(result, "update_task_status") == f"Task Tracking API error: 409 - {detail}"


def test_heartbeat_returns_the_lease(http: responses.RequestsMock, call: ToolCall) -> None:
    held = task_json(status="in_progress", assigned_to="cc", lease_expires_at="2026-02-07T16:00:00Z")
    route = http.post(
        f"{URL}/tasks/TASK-051/heartbeat",
        json=held,
        match=[matchers.json_params_matcher({"agent": "cc", "lease_seconds": 3600})],
    )

    result = call("heartbeat_task", task_id="TASK-051", agent="cc", lease_seconds=3600)

    assert route.call_count == 1
    assert route.calls[0].request.headers["Idempotency-Key"]
    assert result.structured_content == {
        "task_id": "TASK-051",
        "status": "in_progress",
        "assigned_to": "cc",
        "lease_expires_at": "2026-02-07T16:00:00Z",
    }


def test_heartbeat_leaves_the_lease_length_to_the_tracker(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.post(
        f"{URL}/tasks/TASK-051/heartbeat",
        json=task_json(status="in_progress", assigned_to="cc"),
        match=[matchers.json_params_matcher({"agent": "cc"})],
    )

    call("heartbeat_task", task_id="TASK-051", agent="cc")

    assert route.call_count == 1


def test_heartbeat_of_a_task_held_by_another_agent(http: responses.RequestsMock, call: ToolCall) -> None:
    detail = "task TASK-051 is held by b, not a"
    http.post(f"{URL}/tasks/TASK-051/heartbeat", **problem(409, "CONFLICT", "Conflict", detail, assigned_to="b"))

    result = call("heartbeat_task", task_id="TASK-051", agent="a")

    assert error_text(result, "heartbeat_task") == f"Task Tracking API error: 409 - {detail}"


def test_delete_task(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.delete(f"{URL}/tasks/TASK-051", status=204)

    result = call("delete_task", task_id="TASK-051")

    assert route.call_count == 1
    assert result.structured_content == {"deleted": True, "task_id": "TASK-051"}


def test_add_task_rejects_unknown_fields_before_any_request(http: responses.RequestsMock, call: ToolCall) -> None:
    result = call("add_task", tasks=[{"project_id": "p", "title": "t", "owner": "cc"}])

    assert "owner" in error_text(result, "add_task")
    assert len(http.calls) == 0


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("reserve_id_range", {"artifact_type": "US", "count": 0, "project_id": "p"}, "count"),
        ("reserve_id_range", {"artifact_type": "US", "count": 101, "project_id": "p"}, "count"),
        ("update_task_status", {"task_id": "TASK-1", "status": "finished"}, "status"),
        ("list_tasks", {"limit": 500}, "limit"),
        ("get_next_task", {}, "project_id"),
        ("heartbeat_task", {"task_id": "TASK-1"}, "agent"),
        ("heartbeat_task", {"task_id": "TASK-1", "agent": "a", "lease_seconds": 5}, "lease_seconds"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    http: responses.RequestsMock, call: ToolCall, tool: str, arguments: dict[str, Any], field: str
) -> None:
    result = call(tool, **arguments)

    assert field in error_text(result, tool)
    assert len(http.calls) == 0


# Handoffs, log, delegation


def test_create_handoff(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.post(
        f"{URL}/handoffs",
        status=201,
        json=HANDOFF,
        match=[
            matchers.json_params_matcher(
                {"project": "ArtForge", "task": "sprint3-status-report", "direction": "cc_to_ai", "content": "# Hi"}
            )
        ],
    )

    result = call(
        "create_handoff", project_id="ArtForge", task="sprint3-status-report", direction="cc_to_ai", content="# Hi"
    )

    assert route.call_count == 1
    assert result.structured_content["public_url"] == HANDOFF["public_url"]
    assert "content" not in result.structured_content  # the caller has it


def test_list_handoffs_returns_summaries_without_content(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.get(
        f"{URL}/handoffs",
        json={"handoffs": [HANDOFF_ITEM], "total": 1, "has_more": False},
        match=[
            matchers.query_param_matcher(
                {"project": "ArtForge", "status": "pending", "to_agent": "cc", "limit": "20", "offset": "0"}
            )
        ],
    )

    result = call("list_handoffs", project_id="ArtForge", status="pending", to_agent="cc")

    assert route.call_count == 1
    item = result.structured_content["handoffs"][0]
    assert (item["task"], item["summary"], item["size"]) == ("sprint3-status-report", "Status", 20)
    assert "content" not in item


def test_get_handoff_includes_the_content(http: responses.RequestsMock, call: ToolCall) -> None:
    http.get(f"{URL}/handoffs/{HANDOFF['id']}", json={**HANDOFF, "metadata": {"v": 1}})

    result = call("get_handoff", handoff_id=HANDOFF["id"])

    assert result.structured_content["content"] == HANDOFF["content"]
    assert result.structured_content["metadata"] == {"v": 1}


def test_a_long_handoff_is_read_in_pieces_cut_at_line_ends(http: responses.RequestsMock, call: ToolCall) -> None:
    content = "".join(f'Line {n}: {"é" * 60} "quoted"\n' for n in range(400))  # ~32,000 characters
    http.get(f"{URL}/handoffs/{HANDOFF['id']}", json={**HANDOFF, "content": content})

    pieces, cursor = [], None
    while True:
        arguments = {"handoff_id": HANDOFF["id"], **({"cursor": cursor} if cursor else {})}
        answer = call("get_handoff", **arguments).structured_content
        assert len(json.dumps(answer, ensure_ascii=False)) <= 8_000
        assert answer["content"].endswith("\n")
        pieces.append(answer["content"])
        if "next_cursor" not in answer:
            break
        cursor = answer["next_cursor"]

    assert len(pieces) >= 4 and "".join(pieces) == content
    other = call("get_handoff", handoff_id="another", cursor=cursor)
    assert other.is_error and "The cursor continues another query (id differ)" in error_text(other, "get_handoff")


def test_update_handoff_status(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.patch(
        f"{URL}/handoffs/{HANDOFF['id']}",
        json={**HANDOFF, "status": "processed"},
        match=[matchers.json_params_matcher({"status": "processed"})],
    )

    result = call("update_handoff_status", handoff_id=HANDOFF["id"], status="processed")

    assert route.call_count == 1
    assert result.structured_content["status"] == "processed"
    assert "content" not in result.structured_content


def log_entry(event_id: int) -> dict[str, Any]:
    return {
        "timestamp": "2026-02-07T15:00:00Z",
        "type": "task",
        "event": "task.created",
        "project": "p",
        "summary": f"Task created: TASK-{event_id:03} Do it",
        "id": "x",
        "actor": "cc",
        "event_id": event_id,
    }


def test_get_log(http: responses.RequestsMock, call: ToolCall) -> None:
    entry = log_entry(7)
    route = http.get(
        f"{URL}/log",
        json={"entries": [entry]},
        match=[matchers.query_param_matcher({"project": "p", "type": "task", "limit": "11"})],
    )

    result = call("get_log", project_id="p", type="task", limit=10)

    assert route.call_count == 1
    # The area (type) is the event's prefix, and the event id only places the cursor: both left out.
    assert result.structured_content == {"entries": [{k: v for k, v in entry.items() if k not in ("type", "event_id")}]}


def test_get_log_pages_on_from_the_last_entry_shown(http: responses.RequestsMock, call: ToolCall) -> None:
    http.get(f"{URL}/log", json={"entries": [log_entry(n) for n in (9, 8, 7)]})
    page = call("get_log", project_id="p", limit=2).structured_content
    assert [e["summary"].split()[2] for e in page["entries"]] == ["TASK-009", "TASK-008"]

    # Two newer events arrived meanwhile: the next page still starts right after TASK-008.
    route = http.get(
        f"{URL}/log",
        json={"entries": [log_entry(n) for n in (11, 10, 9, 8, 7)]},
        match=[matchers.query_param_matcher({"project": "p", "limit": "5"})],
    )
    rest = call("get_log", cursor=page["next_cursor"], limit=2).structured_content

    assert route.call_count == 1
    assert [e["summary"].split()[2] for e in rest["entries"]] == ["TASK-007"]
    assert "next_cursor" not in rest


def test_delegate_task_async(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.post(
        f"{URL}/task/delegate",
        json={"task_id": "task_1", "status": "delegated"},
        match=[
            matchers.json_params_matcher(
                {"type": "code", "prompt": "Write is_prime", "priority": 8, "sync": False, "files": ["utils.py"]}
            )
        ],
    )

    result = call("delegate_task", prompt="Write is_prime", type="code", priority=8, files=["utils.py"])

    assert result.structured_content == {"task_id": "task_1", "status": "delegated"}
    assert route.calls[0].request.req_kwargs["timeout"] == 5.0


def test_delegate_task_sync_waits_for_the_result(http: responses.RequestsMock, call: ToolCall) -> None:
    answer = {"task_id": "task_2", "status": "completed", "result": {"success": True, "output": "ok", "error": None}}
    route = http.post(f"{URL}/task/delegate", json=answer)

    result = call("delegate_task", prompt="What is recursion?", sync=True, options={"timeout": 30})

    assert result.structured_content["result"]["output"] == "ok"
    assert route.calls[0].request.req_kwargs["timeout"] == 35.0


def test_a_sync_delegation_that_times_out_says_how_to_follow_it(http: responses.RequestsMock, call: ToolCall) -> None:
    task_id = "0b8c6a8e-5f0e-4d55-9d6b-2f8f2d3f6d10"
    detail = (
        f"task {task_id} did not finish within 30 s; it stays queued: GET /task/{task_id}/status for its result later"
    )
    route = http.post(
        f"{URL}/task/delegate",
        **problem(504, "TIMEOUT", "Timeout", detail, task_id=task_id, task_status="pending"),
    )

    result = call("delegate_task", prompt="Slow work", sync=True, options={"timeout": 30})

    assert error_text(result, "delegate_task") == (
        f"Delegated task {task_id} did not finish in time and stays queued (status pending); read its status and "
        f"result later with get_task(task_id='{task_id}'), or delegate with a longer options.timeout"
    )
    assert route.call_count == 1  # a 504 is not retried: each retry would wait the whole timeout again


# Resources


def read(tracker: TrackerClient, uri: str) -> Any:
    """resources/read through a real client; a protocol error is returned, not raised."""

    async def go() -> Any:
        async with Client(build_server(tracker)) as mcp:
            try:
                return await mcp.read_resource(uri)
            except MCPError as error:
                return error

    return anyio.run(go)


def test_task_resource_is_json(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.get(f"{URL}/tasks/TASK-051", json=task_json())

    contents = read(client, "tracker://tasks/TASK-051").contents[0]

    assert contents.mime_type == "application/json"
    assert json.loads(contents.text)["key"] == "TASK-051"


def test_handoff_resource_is_the_markdown(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.get(f"{URL}/handoffs/{HANDOFF['id']}/content", body=HANDOFF["content"], content_type="text/markdown")

    contents = read(client, f"tracker://handoffs/{HANDOFF['id']}").contents[0]

    assert contents.mime_type == "text/markdown"
    assert contents.text == HANDOFF["content"]


def test_a_missing_task_resource_is_a_protocol_error_with_the_message(
    http: responses.RequestsMock, client: TrackerClient
) -> None:
    http.get(f"{URL}/tasks/TASK-999", **problem(404, "TASK_NOT_FOUND", "Task not found", "Task not found: TASK-999"))

    error = read(client, "tracker://tasks/TASK-999")

    assert isinstance(error, MCPError)
    assert error.error.message == "Task not found: TASK-999"
    assert error.error.code == -32602  # invalid params: the resource does not exist
