"""Where the time of one tool call goes, end to end.

Phase 1 (no profiler): the tool is called N times through the real MCP client; wall time per call,
and CPU time per call of each process on the path: this client, `tracker-mcp`, `tracker serve`,
and PostgreSQL (postmaster and all its backends).
Phase 2: the same loop under py-spy (sampling, --nonblocking, Python frames) attached to
`tracker-mcp` and `tracker serve` at once; their collapsed stacks go to bench/results/ and the
summary (inclusive and self shares per function, self share per package) into the results.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import psutil
import psycopg

from bench import seed, stacks
from bench.e2e import new_tasks
from bench.env import World
from bench.mcp_session import bridge_params, child_pid, connect, ok
from bench.stats import summarize

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def postgres_pids(pgdata: Path) -> list[int]:
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].endswith("/postgres") and str(pgdata) in " ".join(cmd):
            return [p.pid, *(c.pid for c in p.children(recursive=True))]
    return []


def tool_call(tool: str, tenant_project: str) -> tuple[str, Callable[[int], dict[str, Any]]]:
    """The MCP tool name and its arguments for call i, for each benchmarked tool."""
    if tool.startswith("add_task"):
        return "add_task", lambda i: {"tasks": new_tasks(tenant_project + "-add", 10)}
    if tool.startswith("get_next_task"):
        return "get_next_task", lambda i: {"project_id": tenant_project, "claim": True, "agent": "profiler"}
    if tool.startswith("reserve_id_range"):
        return "reserve_id_range", lambda i: {"artifact_type": "SPEC", "count": 6, "project_id": tenant_project}
    if tool.startswith("get_next_available_id"):
        return "get_next_available_id", lambda i: {"artifact_type": "US", "project_id": tenant_project}
    if tool.startswith("update_task_status"):
        # Alternate pending <-> completed on one task: every call is a real transition.
        return "update_task_status", lambda i: {
            "task_id": "TASK-0000001",  # the tenant's only project has it
            "status": "completed" if i % 2 == 0 else "pending",
        }
    raise ValueError(f"no profile recipe for {tool}")


def run(world: World, tool: str, calls: int, spy_seconds: float, out_dir: Path) -> dict[str, Any]:
    return anyio.run(_run, world, tool, calls, spy_seconds, out_dir)


async def _run(world: World, tool: str, calls: int, spy_seconds: float, out_dir: Path) -> dict[str, Any]:
    tracker = world.tracker("profile")
    tenant, key = world.tenant_key()
    project = "prof"
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        seed.pending_tasks(conn, tenant, project, 2 * calls + 20000)
        conn.execute("VACUUM ANALYZE tasks")
    name, args = tool_call(tool, project)
    result: dict[str, Any] = {"tool": tool, "mcp_tool": name}
    async with connect(bridge_params(tracker.url, key, world.root), world.root / "profile-bridge.stderr") as bridge:
        bridge_pid = child_pid("tracker-mcp")
        assert bridge_pid is not None, "tracker-mcp process not found"
        pg_pids = postgres_pids((world.root / "db" / "pg").resolve())

        async def call(i: int) -> None:
            ok(await bridge.call_tool(name, args(i)), name)

        for i in range(10):  # warm up: connections, prepared statements, caches
            await call(i)
        procs = {
            "bench client (MCP client)": [psutil.Process().pid],
            "tracker-mcp": [bridge_pid],
            "tracker serve": [tracker.proc.pid],
            "PostgreSQL (all backends)": pg_pids,
        }
        before = {k: cpu_seconds(v) for k, v in procs.items()}
        lat: list[float] = []
        started = time.perf_counter()
        for i in range(calls):
            t = time.perf_counter()
            await call(i + 10)
            lat.append(time.perf_counter() - t)
        wall = time.perf_counter() - started
        after = {k: cpu_seconds(v) for k, v in procs.items()}
        result["calls"] = calls
        result["latency"] = summarize(lat)
        result["wall_ms_per_call"] = wall / calls * 1000
        result["cpu_ms_per_call"] = {k: (after[k] - before[k]) / calls * 1000 for k in procs}
        result["py_spy"] = await _spy(
            call, calls + 10, {"tracker-mcp": bridge_pid, "tracker serve": tracker.proc.pid}, spy_seconds, out_dir, tool
        )
    tracker.stop()
    return result


async def _spy(
    call: Callable[[int], Awaitable[None]], offset: int, pids: dict[str, int], seconds: float, out_dir: Path, tool: str
) -> dict[str, Any]:
    if not Path(PY_SPY).exists():
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = tool.split("(")[0]
    files = {label: out_dir / f"profile-{slug}-{label.replace(' ', '-')}.collapsed" for label in pids}
    spies = [
        subprocess.Popen(
            [
                PY_SPY,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "250",
                "--nonblocking",
                "--format",
                "raw",
                "-o",
                str(files[label]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for label, pid in pids.items()
    ]
    time.sleep(0.5)  # let py-spy attach
    deadline = time.perf_counter() + seconds - 1.0
    n = 0
    while time.perf_counter() < deadline and n < 100_000:
        await call(offset + n)
        n += 1
    for spy in spies:
        try:
            spy.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
    out: dict[str, Any] = {"calls_sampled": n, "seconds": seconds}
    for label, path in files.items():
        out[label] = stacks.summary(path, top=30) if path.exists() else {"error": "py-spy wrote nothing"}
        out[label]["file"] = str(path.relative_to(out_dir.parent.parent)) if path.exists() else None
    return out
