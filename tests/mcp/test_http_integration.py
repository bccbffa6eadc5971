"""End to end over streamable HTTP: the real ``tracker-mcp --transport streamable-http`` process, real
MCP clients (the SDK's), and a real tracker with two tenants served through one bridge.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from .bridge_support import TRACKER_MCP, bridge_env, error_text, ok
from .test_http import INITIALIZE, MCP_HEADERS, free_port, initialize

pytestmark = pytest.mark.slow

SHARED_NAME = "same-project-name"


@contextmanager
def http_bridge(tracker_url: str, tmp_path: Path, *args: str, process_key: str | None = None) -> Iterator[str]:
    """Run ``tracker-mcp --transport streamable-http`` until the block ends (``process_key``: its own
    TASK_TRACKING_API_KEY, which it must not use)."""
    port = free_port()
    out, err = tmp_path / "bridge.stdout", tmp_path / "bridge.stderr"
    command = [str(TRACKER_MCP), "--transport", "streamable-http", "--port", str(port), *args]
    with out.open("w") as stdout, err.open("w") as stderr:
        env = bridge_env(tracker_url, process_key)
        proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=stdout, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the bridge exited with {proc.returncode}:\n{err.read_text()}"
            assert time.monotonic() < deadline, f"the bridge did not answer /health:\n{err.read_text()}"
            try:
                if httpx2.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert out.read_text() == "", "nothing may go to stdout"


async def session(url: str, key: str, steps: Callable[[Client], Any]) -> Any:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
            return await steps(mcp)


def test_two_tenants_through_one_bridge_see_only_their_own(
    tracker_url: str, api_key: str, make_key: Callable[..., str], tmp_path: Path
) -> None:
    keys = {"alpha": api_key, "beta": make_key("write", tenant_name=f"t-{uuid.uuid4().hex[:12]}")}
    results: dict[str, dict[str, Any]] = {}

    async def work(name: str, mcp: Client) -> dict[str, Any]:
        tasks = [{"project_id": SHARED_NAME, "title": f"{name} {n}"} for n in range(5)]
        ok(await mcp.call_tool("add_task", {"tasks": tasks}))
        ids = []
        for _ in range(5):  # interleaves with the other tenant's calls on the same bridge
            ids.append(ok(await mcp.call_tool("get_next_available_id", {"artifact_type": "US", "project_id": "x"})))
        claim = {"project_id": SHARED_NAME, "claim": True, "agent": name}
        claimed = []
        while task := ok(await mcp.call_tool("get_next_task", claim))["task"]:
            claimed.append(task["title"])
        listed = ok(await mcp.call_tool("list_tasks", {"project_id": SHARED_NAME}))
        return {"ids": [i["result"] for i in ids], "claimed": sorted(claimed), "total": listed["total"]}

    async def race(url: str) -> None:
        async def run(name: str) -> None:
            results[name] = await session(url, keys[name], lambda mcp: work(name, mcp))

        async with anyio.create_task_group() as group:
            for name in keys:
                group.start_soon(run, name)

    with http_bridge(tracker_url, tmp_path) as url:
        anyio.run(race, url)

    for name in keys:
        # Each tenant has its own counters and its own tasks, although project names are the same.
        assert results[name]["ids"] == [f"US-{n:03d}" for n in range(1, 6)]
        assert results[name]["claimed"] == [f"{name} {n}" for n in range(5)]
        assert results[name]["total"] == 5


def test_keys_hosts_and_health_on_every_address(tracker_url: str, api_key: str, tmp_path: Path) -> None:
    args = ("--host", "0.0.0.0", "--allowed-host", "tracker.test")
    with http_bridge(tracker_url, tmp_path, *args, process_key=api_key) as url:
        port = url.rpartition(":")[2]

        # A key in the bridge's own environment is never lent to a client that sent none.
        no_key = httpx2.post(f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS, timeout=10)
        assert no_key.status_code == 401 and no_key.headers["WWW-Authenticate"].startswith("Bearer ")

        assert initialize(url, api_key, Host=f"rebound.example:{port}").status_code == 421
        assert initialize(url, api_key, Host=f"tracker.test:{port}").status_code == 200
        assert initialize(url, api_key).status_code == 200  # 127.0.0.1 is always allowed

        async def wrong_key(mcp: Client) -> Any:
            return await mcp.call_tool("get_next_task", {"project_id": "p"})

        refused = anyio.run(session, url, "trk_not-a-real-key", wrong_key)
        assert error_text(refused, "get_next_task") == "Task Tracking API error: 401 - Unauthorized"

        assert httpx2.get(f"{url}/health", headers={"Host": "anything"}).json() == {"status": "ok"}


def test_every_address_without_allowed_hosts_refuses_to_start(tracker_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(TRACKER_MCP), "--transport", "streamable-http", "--host", "0.0.0.0"],
        env=bridge_env(tracker_url, None),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert proc.returncode == 2
    assert proc.stderr.startswith("tracker-mcp: refusing to listen on 0.0.0.0 without allowed host names")
    assert "--allowed-host" in proc.stderr
    assert proc.stdout == ""
