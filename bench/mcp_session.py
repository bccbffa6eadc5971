"""MCP clients over stdio, spawned the way agents spawn them (the SDK's `Client` with stdio params)."""

from __future__ import annotations

import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from bench.env import TRACKER_MCP

NOOP_SERVER = Path(__file__).with_name("noop_server.py")


def bridge_params(url: str, key: str, cwd: Path) -> StdioServerParameters:
    """`tracker-mcp` with only what it needs (the SDK passes few variables; no developer .env leaks in)."""
    env = {"PATH": os.environ.get("PATH", ""), "TASK_TRACKING_URL": url, "TASK_TRACKING_API_KEY": key}
    return StdioServerParameters(command=str(TRACKER_MCP), env=env, cwd=str(cwd))


def noop_params(cwd: Path) -> StdioServerParameters:
    env = {"PATH": os.environ.get("PATH", "")}
    return StdioServerParameters(command=sys.executable, args=[str(NOOP_SERVER)], env=env, cwd=str(cwd))


@asynccontextmanager
async def connect(params: StdioServerParameters, errlog: Path):  # type: ignore[no-untyped-def]
    """A connected `Client`; the server's stderr (one log line per tool call) goes to `errlog`."""
    with errlog.open("a") as err:
        async with Client(stdio_client(params, errlog=err), read_timeout_seconds=30) as client:
            yield client


def child_pid(marker: str) -> int | None:
    """Pid of this process's newest child whose command line contains `marker`."""
    found = [p for p in psutil.Process().children(recursive=True) if marker in " ".join(_cmdline(p))]
    return max(found, key=lambda p: p.create_time()).pid if found else None


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def ok(result: CallToolResult, tool: str) -> Any:
    if result.is_error:
        text = result.content[0].text if result.content else "(no text)"
        raise RuntimeError(f"{tool} failed: {text}")
    return result.structured_content
