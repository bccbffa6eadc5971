"""Helpers shared by the bridge's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from mcp_tools.client import TrackerClient
from mcp_tools.config import DEFAULT_URL, Config
from mcp_tools.http_server import build_app, request_key
from mcp_tools.server import build_server

T = TypeVar("T")

API_KEY = "test-key-0123456789"
SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"
URL = DEFAULT_URL  # the spec's scenarios name http://localhost:8080
PROJECT = "ai-agent-mcp-server"
TRACKER_MCP = Path(sys.executable).with_name("tracker-mcp")


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``responses.add`` answering an RFC 9457 problem."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code, **extra}
    return {"status": status, "json": body, "content_type": "application/problem+json"}


def task_json(key: str = "TASK-051", **fields: Any) -> dict[str, Any]:
    task = {
        "id": "6f1c2d9e-8a47-4c1b-9a57-0d3c0f7b5a11",
        "key": key,
        "task_id": key,
        "project": "ai-agent-mcp-server",
        "title": "Generate HLS-006",
        "description": "Generate HLS-006 from PRD-006",
        "priority": "high",
        "status": "pending",
        "assigned_to": None,
        "tags": ["sdlc"],
        "notes": None,
        "completion_notes": None,
        "inputs": {"prd": "PRD-006"},
        "outputs": {"hls": "HLS-006"},
        "due_date": None,
        "related_handoff_id": None,
        "depends_on": [],
        "result": None,
        "lease_expires_at": None,
        "created_at": "2026-02-07T15:00:00Z",
        "updated_at": "2026-02-07T15:00:00Z",
        "completed_at": None,
    }
    task.update(fields)
    return task


ToolCall = Callable[..., CallToolResult]


def call_tool(tracker: TrackerClient, name: str, arguments: dict[str, Any]) -> CallToolResult:
    """One tools/call through a real MCP client connected in memory to a fresh server."""

    async def go() -> CallToolResult:
        async with Client(build_server(tracker)) as mcp:
            return await mcp.call_tool(name, arguments)

    return anyio.run(go)


def error_text(result: CallToolResult, tool: str) -> str:
    """The agent-facing message of a failed call, without the SDK's ``Error executing tool`` prefix."""
    assert result.is_error, f"expected an error, got {result.structured_content}"
    text = result.content[0].text
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    return text[len(prefix) :]


def ok(result: CallToolResult) -> Any:
    """The structured result of a successful call (the error text when it failed)."""
    assert not result.is_error, result.content[0].text
    return result.structured_content


# The real bridge process


def bridge_env(url: str, key: str | None) -> dict[str, str]:
    """Only what the bridge needs: the SDK passes few variables, and a developer's .env must not leak in."""
    env = {"PATH": os.environ.get("PATH", ""), "TASK_TRACKING_URL": url}
    if key is not None:
        env["TASK_TRACKING_API_KEY"] = key
    return env


def with_bridge(env: dict[str, str], cwd: Path, steps: Callable[[Client], Awaitable[T]]) -> T:
    """Spawn ``tracker-mcp`` over stdio, run ``steps`` against it, stop it."""

    async def go() -> T:
        params = StdioServerParameters(command=str(TRACKER_MCP), env=env, cwd=str(cwd))
        async with Client(params, read_timeout_seconds=30) as mcp:
            return await steps(mcp)

    return anyio.run(go)


# The streamable HTTP bridge, in process


@contextmanager
def running_bridge(config: Config, **app_options: Any) -> Iterator[str]:
    """Serve the streamable HTTP bridge of ``config`` (real ASGI app, uvicorn, lifespan) in a thread."""
    tracker = TrackerClient(config, api_key=request_key)
    app = build_app(build_server(tracker, config.surface), config, **app_options)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.port, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the bridge did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
        tracker.close()
