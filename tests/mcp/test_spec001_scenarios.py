"""Spec 001's ten acceptance scenarios, through a real MCP client, the tracker stubbed at the transport."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
import responses
from responses import matchers

from mcp_tools.client import TrackerClient
from mcp_tools.config import Config

from .bridge_support import API_KEY, URL, ToolCall, call_tool, error_text, problem, task_json

PROJECT = "ai-agent-mcp-server"
REPO = Path(__file__).resolve().parents[2]


def test_1_get_next_task_returns_the_pending_task(http: responses.RequestsMock, call: ToolCall) -> None:
    route = http.get(f"{URL}/tasks/next", json={"task": task_json()})

    result = call("get_next_task", project_id=PROJECT, status_filter="pending")

    assert not result.is_error
    task = result.structured_content["task"]
    assert task["task_id"] == "TASK-051"
    assert task["description"] == "Generate HLS-006 from PRD-006"
    assert task["inputs"] == {"prd": "PRD-006"} and task["outputs"] == {"hls": "HLS-006"}
    request = route.calls[0].request
    assert request.url == f"{URL}/tasks/next?project=ai-agent-mcp-server&status=pending"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


def test_2_get_next_task_returns_null_when_nothing_is_pending(http: responses.RequestsMock, call: ToolCall) -> None:
    http.get(f"{URL}/tasks/next", json={"task": None})

    result = call("get_next_task", project_id=PROJECT)

    assert not result.is_error
    assert result.structured_content["task"] is None


def test_3_update_task_status_completes_the_task(http: responses.RequestsMock, call: ToolCall) -> None:
    done = task_json(status="completed", completion_notes="Done", completed_at="2026-02-07T16:00:00Z")
    route = http.put(
        f"{URL}/tasks/TASK-051/status",
        json={"updated_task": done},
        match=[matchers.json_params_matcher({"status": "completed", "completion_notes": "Done"})],
    )

    result = call("update_task_status", task_id="TASK-051", status="completed", completion_notes="Done")

    assert not result.is_error
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["completed_at"] == "2026-02-07T16:00:00Z"
    assert route.call_count == 1
    assert route.calls[0].request.method == "PUT"


def test_4_get_next_available_id_allocates_the_next_id(http: responses.RequestsMock, call: ToolCall) -> None:
    # The issue overrides the spec's GET (a peek) with an atomic allocation.
    route = http.post(
        f"{URL}/ids/next",
        status=201,
        json={"next_id": "US-028", "number": 28, "type": "US", "project": PROJECT},
        match=[matchers.json_params_matcher({"type": "US", "project_id": PROJECT})],
    )

    result = call("get_next_available_id", artifact_type="US", project_id=PROJECT)

    assert not result.is_error
    assert result.structured_content == {"result": "US-028"}
    assert result.content[0].text == "US-028"
    assert route.call_count == 1


def test_5_reserve_id_range_reserves_contiguous_ids(http: responses.RequestsMock, call: ToolCall) -> None:
    ids = [f"US-{n:03d}" for n in range(28, 34)]
    http.post(
        f"{URL}/ids/reserve",
        status=201,
        json={
            "reservation_id": "0b7f6a55-2d7e-4a43-9b1e-3f2f4f1d7c10",
            "reserved_ids": ids,
            "expires_at": "2026-02-07T16:00:00Z",
            "type": "US",
            "project": PROJECT,
            "status": "active",
        },
        match=[matchers.json_params_matcher({"type": "US", "count": 6, "project_id": PROJECT})],
    )

    result = call("reserve_id_range", artifact_type="US", count=6, project_id=PROJECT)

    assert not result.is_error
    reservation = result.structured_content
    assert reservation["reserved_ids"] == ["US-028", "US-029", "US-030", "US-031", "US-032", "US-033"]
    assert reservation["reservation_id"] == "0b7f6a55-2d7e-4a43-9b1e-3f2f4f1d7c10"
    assert reservation["expires_at"] == "2026-02-07T16:00:00Z"


def test_6_add_task_adds_a_batch(http: responses.RequestsMock, call: ToolCall) -> None:
    tasks = [
        {"task_id": "TASK-046", "project_id": PROJECT, "description": "Generate HLS-006", "inputs": ["PRD-006"]},
        {"task_id": "TASK-047", "project_id": PROJECT, "description": "Generate US-054"},
    ]
    route = http.post(
        f"{URL}/tasks/batch",
        status=201,
        json={"success": True, "tasks_added": 2, "task_ids": ["TASK-046", "TASK-047"], "ids": ["u1", "u2"]},
        match=[matchers.json_params_matcher({"tasks": tasks})],
    )

    result = call("add_task", tasks=tasks)

    assert not result.is_error
    assert result.structured_content["success"] is True
    assert result.structured_content["tasks_added"] == 2
    assert result.structured_content["task_ids"] == ["TASK-046", "TASK-047"]
    assert route.calls[0].request.method == "POST"


def test_7_unavailable_service_is_reported_with_its_url(closed_port_url: str, sleeps: list[float]) -> None:
    tracker = TrackerClient(Config(api_key=API_KEY, base_url=closed_port_url))

    result = call_tool(tracker, "get_next_task", {"project_id": PROJECT})

    assert error_text(result, "get_next_task") == (
        f"Task Tracking microservice unavailable: Connection refused at {closed_port_url}"
    )


def test_7_unavailable_at_the_default_url(http: responses.RequestsMock, call: ToolCall) -> None:
    http.get(f"{URL}/tasks/next", body=requests.ConnectionError("[Errno 111] Connection refused"))

    result = call("get_next_task", project_id=PROJECT)

    assert error_text(result, "get_next_task") == (
        "Task Tracking microservice unavailable: Connection refused at http://localhost:8080"
    )


def test_8_unknown_task_is_reported_by_its_id(http: responses.RequestsMock, call: ToolCall) -> None:
    http.put(
        f"{URL}/tasks/TASK-999/status",
        **problem(404, "TASK_NOT_FOUND", "Task not found", "no task TASK-999 in this tenant"),
    )

    result = call("update_task_status", task_id="TASK-999", status="completed")

    assert error_text(result, "update_task_status") == "Task not found: TASK-999"


def test_9_invalid_api_key_is_reported_as_401_unauthorized(http: responses.RequestsMock, call: ToolCall) -> None:
    unauthorized = problem(401, "UNAUTHORIZED", "Unauthorized", "invalid API key")
    http.get(f"{URL}/tasks/next", **unauthorized)
    http.post(f"{URL}/ids/next", **unauthorized)
    http.get(f"{URL}/tasks", **unauthorized)

    calls = [
        ("get_next_task", {"project_id": PROJECT}),
        ("get_next_available_id", {"artifact_type": "US", "project_id": PROJECT}),
        ("list_tasks", {}),
    ]
    for tool, arguments in calls:
        result = call(tool, **arguments)
        assert error_text(result, tool) == "Task Tracking API error: 401 - Unauthorized"


def test_10_missing_api_key_fails_fast_before_serving(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASK_TRACKING_")}
    env["PYTHONPATH"] = str(REPO)
    started = time.perf_counter()

    proc = subprocess.run(
        [sys.executable, "-m", "mcp_tools"],
        cwd=tmp_path,  # no .env here
        env=env,
        input=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert proc.returncode != 0
    assert "TASK_TRACKING_API_KEY environment variable not set" in proc.stderr
    assert proc.stdout == ""
    assert time.perf_counter() - started < 10
