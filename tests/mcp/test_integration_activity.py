"""End to end, like test_integration.py (the real ``tracker-mcp`` over stdio, a real tracker, a fresh
tenant per test): handoffs and their resource, the activity log, delegation with a real
``tracker worker``, and task leases.
"""

from __future__ import annotations

import uuid

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.helpers import running_worker

from .bridge_support import PROJECT, error_text, ok
from .conftest import Bridge

pytestmark = pytest.mark.slow

REPORT = "# Sprint 3 status\n\nAll stories done but US-054.\n"


# Handoffs


def test_handoff_round_trip_and_resource(bridge: Bridge[None]) -> None:
    async def steps(mcp: Client) -> None:
        created = ok(
            await mcp.call_tool(
                "create_handoff",
                {
                    "project_id": PROJECT,
                    "task": "sprint3-status",
                    "content": REPORT,
                    "direction": "cc_to_ai",
                    "metadata": {"sprint": 3},
                },
            )
        )
        handoff_id = created["id"]
        assert uuid.UUID(handoff_id)
        assert (created["from_agent"], created["to_agent"], created["status"]) == ("cc", "claude_ai", "pending")
        assert created["public_url"].endswith(f"/handoffs/{handoff_id}/content")
        assert "content" not in created  # the caller has it; a write answers with a receipt

        page = ok(await mcp.call_tool("list_handoffs", {"project_id": PROJECT, "to_agent": "claude_ai"}))
        assert page["total"] == 1 and "next_cursor" not in page
        (item,) = page["handoffs"]
        assert item["id"] == handoff_id and item["summary"] == "Sprint 3 status"
        assert item["size"] == len(REPORT) and "content" not in item

        full = ok(await mcp.call_tool("get_handoff", {"handoff_id": handoff_id}))
        assert full["content"] == REPORT and full["metadata"] == {"sprint": 3}

        resource = await mcp.read_resource(f"tracker://handoffs/{handoff_id}")
        assert resource.contents[0].text == REPORT
        assert resource.contents[0].mime_type == "text/markdown"

        read = ok(await mcp.call_tool("update_handoff_status", {"handoff_id": handoff_id, "status": "read"}))
        assert read["status"] == "read" and read["updated_at"] >= full["created_at"]
        back = await mcp.call_tool("update_handoff_status", {"handoff_id": handoff_id, "status": "pending"})
        assert error_text(back, "update_handoff_status").startswith("Invalid status transition: ")

        assert ok(await mcp.call_tool("list_handoffs", {"project_id": PROJECT, "status": "pending"}))["total"] == 0

        missing = str(uuid.uuid4())
        gone = await mcp.call_tool("get_handoff", {"handoff_id": missing})
        assert error_text(gone, "get_handoff").startswith("Task Tracking API error: 404 - ")
        with pytest.raises(MCPError) as failure:
            await mcp.read_resource(f"tracker://handoffs/{missing}")
        assert "404" in failure.value.error.message

    bridge(steps)


def test_a_reply_and_paging(bridge: Bridge[None]) -> None:
    async def steps(mcp: Client) -> None:
        first = ok(
            await mcp.call_tool(
                "create_handoff",
                {"project_id": PROJECT, "task": "question", "content": "Which DB?", "direction": "ai_to_cc"},
            )
        )
        reply = ok(
            await mcp.call_tool(
                "create_handoff",
                {
                    "project_id": PROJECT,
                    "task": "question",
                    "content": "PostgreSQL.",
                    "from_agent": "cc",
                    "to_agent": "claude_ai",
                    "response_to": first["id"],
                },
            )
        )
        assert reply["response_to"] == first["id"] and reply["direction"] == "cc_to_ai"

        page = ok(await mcp.call_tool("list_handoffs", {"project_id": PROJECT, "limit": 1}))
        assert page["total"] == 2 and page["next_cursor"]
        assert page["handoffs"][0]["id"] == reply["id"]  # newest first
        rest = ok(await mcp.call_tool("list_handoffs", {"limit": 1, "cursor": page["next_cursor"]}))
        assert rest["handoffs"][0]["id"] == first["id"] and "next_cursor" not in rest

        bad = await mcp.call_tool(
            "create_handoff", {"project_id": PROJECT, "task": "x", "content": "y", "from_agent": "cc"}
        )
        assert error_text(bad, "create_handoff").startswith("Task Tracking API error: 400 - ")

    bridge(steps)


# The activity log


def test_the_log_shows_what_the_tools_did(bridge: Bridge[None]) -> None:
    async def steps(mcp: Client) -> None:
        ok(
            await mcp.call_tool(
                "add_task", {"tasks": [{"project_id": PROJECT, "task_id": "TASK-001", "title": "Log me"}]}
            )
        )
        ok(await mcp.call_tool("update_task_status", {"task_id": "TASK-001", "status": "in_progress"}))
        ok(
            await mcp.call_tool(
                "create_handoff", {"project_id": PROJECT, "task": "t", "content": "c", "direction": "cc_to_ai"}
            )
        )
        ok(await mcp.call_tool("get_next_available_id", {"artifact_type": "US", "project_id": PROJECT}))
        ok(await mcp.call_tool("add_task", {"tasks": [{"project_id": "elsewhere", "title": "Not here"}]}))

        log = ok(await mcp.call_tool("get_log", {"project_id": PROJECT}))
        entries = log["entries"]
        assert {e["project"] for e in entries} == {PROJECT}
        assert {e["event"].split(".")[0] for e in entries} >= {"task", "handoff", "id"}
        assert entries[0]["timestamp"] >= entries[-1]["timestamp"]  # newest first
        created = [e for e in entries if e["event"] == "task.created"]
        assert len(created) == 1 and "TASK-001" in created[0]["summary"]

        tasks_only = ok(await mcp.call_tool("get_log", {"project_id": PROJECT, "type": "task"}))["entries"]
        assert tasks_only and {e["event"].split(".")[0] for e in tasks_only} == {"task"}
        one_event = ok(await mcp.call_tool("get_log", {"type": "task.created"}))["entries"]
        assert {e["event"] for e in one_event} == {"task.created"} and len(one_event) == 2
        first = ok(await mcp.call_tool("get_log", {"project_id": PROJECT, "limit": 2}))
        assert len(first["entries"]) == 2
        rest = ok(await mcp.call_tool("get_log", {"cursor": first["next_cursor"], "limit": 200}))
        assert first["entries"] + rest["entries"] == entries and "next_cursor" not in rest
        future = ok(await mcp.call_tool("get_log", {"since": "2999-01-01T00:00:00Z"}))
        assert future == {"entries": []}

    bridge(steps)


# Delegation


def test_async_delegation_queues_a_typed_task(bridge: Bridge[None]) -> None:
    async def steps(mcp: Client) -> None:
        out = ok(
            await mcp.call_tool(
                "delegate_task",
                {
                    "prompt": "Create a Python function to calculate prime numbers",
                    "type": "code",
                    "priority": 8,
                    "files": ["utils.py"],
                    "options": {"project": PROJECT},
                },
            )
        )
        assert out["status"] == "delegated" and out.get("result") is None
        task = ok(await mcp.call_tool("get_task", {"task_id": out["task_id"]}))
        assert (task["type"], task["priority"], task["project"], task["status"]) == ("code", "high", PROJECT, "pending")
        assert task["inputs"]["files"] == ["utils.py"]

    bridge(steps)


def test_sync_delegation_returns_the_workers_result(bridge: Bridge[None], tracker_url: str, api_key: str) -> None:
    prompt = "Echo me back"

    async def steps(mcp: Client) -> dict[str, object]:
        return ok(
            await mcp.call_tool(
                "delegate_task",
                {"prompt": prompt, "type": "code", "sync": True, "options": {"project": PROJECT, "timeout": 60}},
            )
        )

    with running_worker(tracker_url, api_key, PROJECT, "cat"):
        out = bridge(steps)

    assert out["status"] == "completed"
    assert out["result"] == {"success": True, "output": prompt}  # a null error is left out, not sent


def test_a_sync_delegation_nobody_takes_times_out_once(bridge: Bridge[None]) -> None:
    async def steps(mcp: Client) -> tuple[str, dict[str, object]]:
        failed = await mcp.call_tool(
            "delegate_task", {"prompt": "nobody home", "sync": True, "options": {"project": PROJECT, "timeout": 1}}
        )
        text = error_text(failed, "delegate_task")
        task_id = text.split()[2]
        return text, ok(await mcp.call_tool("get_task", {"task_id": task_id}))

    text, task = bridge(steps)

    assert text.startswith(f"Delegated task {task['id']} did not finish in time and stays queued (status pending)")
    assert f"get_task(task_id='{task['id']}')" in text
    assert task["status"] == "pending"


# Leases


def test_heartbeat_extends_the_lease_of_the_holder_only(bridge: Bridge[None]) -> None:
    async def steps(mcp: Client) -> None:
        ok(
            await mcp.call_tool(
                "add_task", {"tasks": [{"project_id": PROJECT, "task_id": "TASK-001", "title": "Long"}]}
            )
        )
        claimed = ok(await mcp.call_tool("get_next_task", {"project_id": PROJECT, "claim": True, "agent": "a"}))["task"]
        assert claimed["lease_expires_at"]

        lease = ok(await mcp.call_tool("heartbeat_task", {"task_id": "TASK-001", "agent": "a", "lease_seconds": 3600}))
        assert (lease["task_id"], lease["status"], lease["assigned_to"]) == ("TASK-001", "in_progress", "a")
        assert lease["lease_expires_at"] > claimed["lease_expires_at"]

        other = await mcp.call_tool("heartbeat_task", {"task_id": "TASK-001", "agent": "b"})
        assert error_text(other, "heartbeat_task") == (
            "Task Tracking API error: 409 - task TASK-001 is held by a, not b"
        )
        steal = await mcp.call_tool("update_task_status", {"task_id": "TASK-001", "status": "completed", "agent": "b"})
        assert error_text(steal, "update_task_status").startswith(
            "Task Tracking API error: 409 - task TASK-001 is held by a; b cannot change it"
        )
        done = ok(
            await mcp.call_tool("update_task_status", {"task_id": "TASK-001", "status": "completed", "agent": "a"})
        )
        assert done["status"] == "completed" and "lease_expires_at" not in done

        late = await mcp.call_tool("heartbeat_task", {"task_id": "TASK-001", "agent": "a"})
        assert error_text(late, "heartbeat_task") == (
            "Task Tracking API error: 409 - task TASK-001 is completed, not in_progress; there is no lease to extend"
        )

    bridge(steps)
