"""End to end: the real ``tracker-mcp`` process, spawned through the SDK's stdio client, against a
real ``tracker serve`` on embedded PostgreSQL (``tracker_url`` and ``api_key`` from tests/conftest.py,
a fresh tenant per test): spec 001's scenarios, tasks, IDs, and what stdout carries.

Handoffs, the log, delegation and leases: test_integration_activity.py; the HTTP transport:
test_http_integration.py.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from mcp_tools.client import build_session

from .bridge_support import PROJECT, SNAPSHOT, TRACKER_MCP, bridge_env, error_text, ok, with_bridge
from .conftest import Bridge

pytestmark = pytest.mark.slow


NEW_TASKS = [
    {
        "task_id": "TASK-046",
        "project_id": PROJECT,
        "description": "Generate HLS-006",
        "inputs": {"prd": "PRD-006"},
        "outputs": {"hls": "HLS-006"},
        "priority": "medium",
    },
    {"task_id": "TASK-047", "project_id": PROJECT, "description": "Generate US-054", "priority": "low"},
]


# Spec 001's scenarios, end to end


def test_scenarios_1_2_3_6_8_task_lifecycle(bridge: Bridge[Any]) -> None:
    async def steps(mcp: Client) -> None:
        # 2: nothing pending yet
        empty = ok(await mcp.call_tool("get_next_task", {"project_id": PROJECT}))
        assert empty["task"] is None and "has no tasks" in empty["hint"]  # a typo'd project says so

        # 6: a batch
        added = ok(await mcp.call_tool("add_task", {"tasks": NEW_TASKS}))
        assert added["success"] is True and added["tasks_added"] == 2
        assert added["task_ids"] == ["TASK-046", "TASK-047"]
        urgent = {
            "task_id": "TASK-051",
            "project_id": PROJECT,
            "description": "Write US-053",
            "priority": "high",
            "inputs": ["PRD-006"],
            "outputs": ["US-053"],
        }
        ok(await mcp.call_tool("add_task", {"tasks": [urgent]}))

        # 1: the highest-priority pending task
        task = ok(await mcp.call_tool("get_next_task", {"project_id": PROJECT, "status_filter": "pending"}))["task"]
        assert task["task_id"] == "TASK-051"
        assert task["description"] == "Write US-053"
        assert task["inputs"] == ["PRD-006"] and task["outputs"] == ["US-053"]

        # 3: in_progress, then completed
        ok(await mcp.call_tool("update_task_status", {"task_id": "TASK-051", "status": "in_progress"}))
        done = ok(
            await mcp.call_tool(
                "update_task_status", {"task_id": "TASK-051", "status": "completed", "completion_notes": "Done"}
            )
        )
        assert done["status"] == "completed" and done["completed_at"]
        assert done["completed_at"]

        # 8: an unknown task
        missing = await mcp.call_tool("update_task_status", {"task_id": "TASK-999", "status": "completed"})
        assert error_text(missing, "update_task_status") == "Task not found: TASK-999"

    bridge(steps)


def test_scenarios_4_5_ids(bridge: Bridge[Any]) -> None:
    async def steps(mcp: Client) -> None:
        for project in (PROJECT, "second-project"):  # bring each US counter to 27
            first = ok(
                await mcp.call_tool("reserve_id_range", {"artifact_type": "US", "count": 27, "project_id": project})
            )
            assert first["reserved_ids"][-1] == "US-027"

        # 4
        allocated = await mcp.call_tool("get_next_available_id", {"artifact_type": "US", "project_id": PROJECT})
        assert ok(allocated) == {"result": "US-028"}
        assert allocated.content[0].text == "US-028"

        # 5
        reservation = ok(
            await mcp.call_tool("reserve_id_range", {"artifact_type": "US", "count": 6, "project_id": "second-project"})
        )
        assert reservation["reserved_ids"] == ["US-028", "US-029", "US-030", "US-031", "US-032", "US-033"]
        assert uuid.UUID(reservation["reservation_id"])
        assert reservation["expires_at"]

    bridge(steps)


def test_scenario_7_unavailable(closed_port_url: str, tmp_path: Path) -> None:
    async def steps(mcp: Client) -> CallToolResult:
        return await mcp.call_tool("get_next_task", {"project_id": PROJECT})

    result = with_bridge(bridge_env(closed_port_url, "any-key"), tmp_path, steps)

    assert error_text(result, "get_next_task") == (
        f"Task Tracking microservice unavailable: Connection refused at {closed_port_url}"
    )


def test_scenario_9_invalid_key(tracker_url: str, tmp_path: Path) -> None:
    async def steps(mcp: Client) -> list[CallToolResult]:
        return [
            await mcp.call_tool("get_next_task", {"project_id": PROJECT}),
            await mcp.call_tool("get_next_available_id", {"artifact_type": "US", "project_id": PROJECT}),
        ]

    results = with_bridge(bridge_env(tracker_url, "trk_not-a-real-key"), tmp_path, steps)

    for result, tool in zip(results, ["get_next_task", "get_next_available_id"], strict=True):
        assert error_text(result, tool) == "Task Tracking API error: 401 - Unauthorized"


def test_scenario_10_missing_key_fails_fast(tracker_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(TRACKER_MCP)],
        env=bridge_env(tracker_url, None),
        cwd=tmp_path,
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert proc.returncode != 0
    assert "TASK_TRACKING_API_KEY environment variable not set" in proc.stderr
    assert proc.stdout == ""


# Beyond the scenarios


def test_claims_by_concurrent_bridges_never_overlap(tracker_url: str, api_key: str, tmp_path: Path) -> None:
    env = bridge_env(tracker_url, api_key)
    count = 8

    async def seed(mcp: Client) -> None:
        tasks = [{"project_id": PROJECT, "title": f"job {n}"} for n in range(count)]
        ok(await mcp.call_tool("add_task", {"tasks": tasks}))

    with_bridge(env, tmp_path, seed)

    async def claim_all(agent: str) -> list[str]:
        taken: list[str] = []
        params = StdioServerParameters(command=str(TRACKER_MCP), env=env, cwd=str(tmp_path))
        async with Client(params, read_timeout_seconds=30) as mcp:
            while True:
                got = ok(await mcp.call_tool("get_next_task", {"project_id": PROJECT, "claim": True, "agent": agent}))
                if got["task"] is None:
                    return taken
                assert got["task"]["assigned_to"] == agent and got["task"]["status"] == "in_progress"
                taken.append(got["task"]["key"])

    async def race() -> dict[str, list[str]]:
        results: dict[str, list[str]] = {}

        async def run(agent: str) -> None:
            results[agent] = await claim_all(agent)

        async with anyio.create_task_group() as group:
            for agent in ("agent-a", "agent-b"):
                group.start_soon(run, agent)
        return results

    results = anyio.run(race)
    claimed = results["agent-a"] + results["agent-b"]
    assert len(claimed) == count
    assert len(set(claimed)) == count


def test_ids_allocated_by_concurrent_bridges_are_unique(tracker_url: str, api_key: str, tmp_path: Path) -> None:
    env = bridge_env(tracker_url, api_key)

    async def allocate(out: list[str]) -> None:
        params = StdioServerParameters(command=str(TRACKER_MCP), env=env, cwd=str(tmp_path))
        async with Client(params, read_timeout_seconds=30) as mcp:
            for _ in range(10):
                args = {"artifact_type": "SPEC", "project_id": PROJECT}
                out.append(ok(await mcp.call_tool("get_next_available_id", args))["result"])

    async def race() -> list[str]:
        ids: list[str] = []
        async with anyio.create_task_group() as group:
            group.start_soon(allocate, ids)
            group.start_soon(allocate, ids)
        return ids

    ids = anyio.run(race)
    assert sorted(ids) == [f"SPEC-{n:03d}" for n in range(1, 21)]


def test_task_crud_paging_and_resource(bridge: Bridge[Any]) -> None:
    async def steps(mcp: Client) -> None:
        ok(await mcp.call_tool("add_task", {"tasks": NEW_TASKS}))

        page = ok(await mcp.call_tool("list_tasks", {"project_id": PROJECT, "limit": 1}))
        assert page["total"] == 2 and page["next_cursor"]
        assert "description" not in page["tasks"][0]
        rest = ok(await mcp.call_tool("list_tasks", {"limit": 1, "cursor": page["next_cursor"]}))
        assert "next_cursor" not in rest
        assert {page["tasks"][0]["key"], rest["tasks"][0]["key"]} == {"TASK-046", "TASK-047"}

        updated = ok(await mcp.call_tool("update_task", {"task_id": "TASK-046", "notes": "halfway", "tags": ["hls"]}))
        assert updated["key"] == "TASK-046" and updated["tags"] == ["hls"]
        assert ok(await mcp.call_tool("get_task", {"task_id": "TASK-046"}))["notes"] == "halfway"

        resource = await mcp.read_resource("tracker://tasks/TASK-046")
        assert json.loads(resource.contents[0].text)["notes"] == "halfway"

        ok(await mcp.call_tool("update_task_status", {"task_id": "TASK-046", "status": "completed"}))
        wrong = await mcp.call_tool("update_task_status", {"task_id": "TASK-046", "status": "in_progress"})
        assert error_text(wrong, "update_task_status").startswith("Invalid status transition: ")

        assert ok(await mcp.call_tool("delete_task", {"task_id": "TASK-047"})) == {
            "deleted": True,
            "task_id": "TASK-047",
        }
        gone = await mcp.call_tool("get_task", {"task_id": "TASK-047"})
        assert error_text(gone, "get_task") == "Task not found: TASK-047"
        try:
            await mcp.read_resource("tracker://tasks/TASK-047")
        except MCPError as error:
            assert error.error.message == "Task not found: TASK-047"
        else:
            pytest.fail("reading a deleted task's resource succeeded")

    bridge(steps)


def test_tools_list_over_stdio_matches_the_snapshot(bridge: Bridge[Any]) -> None:
    async def steps(mcp: Client) -> list[dict[str, Any]]:
        result = await mcp.list_tools()
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)["tools"]

    tools = bridge(steps)

    assert json.dumps(tools, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == SNAPSHOT.read_text()


def test_a_replayed_write_is_answered_once(tracker_url: str, api_key: str) -> None:
    """What makes retrying a keyed POST safe: the tracker replays the first answer."""
    session = build_session(api_key)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"type": "REQ", "project_id": PROJECT}

    first = session.post(f"{tracker_url}/ids/next", json=body, headers=headers, timeout=5)
    again = session.post(f"{tracker_url}/ids/next", json=body, headers=headers, timeout=5)
    fresh = session.post(f"{tracker_url}/ids/next", json=body, timeout=5)

    assert first.status_code == again.status_code == 201
    assert first.json()["next_id"] == again.json()["next_id"] == "REQ-001"
    assert fresh.json()["next_id"] == "REQ-002"


def test_stdout_carries_only_json_rpc(tracker_url: str, api_key: str, tmp_path: Path) -> None:
    """Drive the raw process: every stdout line must be a JSON-RPC message; logs go to stderr."""
    requests_ = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_next_task", "arguments": {"project_id": PROJECT}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "update_task_status", "arguments": {"task_id": "TASK-999", "status": "completed"}},
        },
    ]
    proc = subprocess.Popen(
        [str(TRACKER_MCP)],
        env=bridge_env(tracker_url, api_key),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    answers: dict[int, dict[str, Any]] = {}
    lines: list[str] = []
    try:
        for message in requests_:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" not in message:
                continue
            while message["id"] not in answers:
                line = proc.stdout.readline()
                assert line, "the bridge closed stdout early"
                lines.append(line)
                parsed = json.loads(line)
                if "id" in parsed:
                    answers[parsed["id"]] = parsed
        rest, stderr = proc.communicate(timeout=30)  # closes stdin: the bridge exits
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += rest.splitlines(keepends=True)

    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0", line
    assert answers[3]["result"]["structuredContent"]["task"] is None
    assert answers[4]["result"]["isError"] is True
    assert "tool=get_next_task" in stderr and "http=200" in stderr
    assert "tool=update_task_status" in stderr and "http=404" in stderr
    assert api_key not in stderr


def test_the_tracker_health_is_reachable_without_a_key(tracker_url: str) -> None:
    """The registration guide's quick check (curl $TASK_TRACKING_URL/health) works as written."""
    assert requests.get(f"{tracker_url}/health", timeout=5).json()["status"] == "ok"
