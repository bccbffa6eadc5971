"""4. Start-up and memory.

- `tracker-mcp`: spawn -> `initialize` answered (raw JSON-RPC over its stdin/stdout), against the floors
  `python -c pass` and the no-op MCP server started the same way. Then one tool call, and the RSS
  of each at rest (1 s after the last request).
- `tracker serve`: spawn -> GET /health 200, on a fresh embedded data directory (initdb, migrations,
  first admin key), on the existing one (restart), and with TRACKER_DATABASE_URL set (no embedded
  server: the Python side alone). RSS at rest of the tracker process and of its PostgreSQL
  (proportional set size summed over the postmaster and its children, so shared buffers count once).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench.env import TRACKER_MCP, World, spawn_tracker
from bench.mcp_session import NOOP_SERVER
from bench.stats import summarize

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}


def _send(proc: subprocess.Popen, message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def _answer(proc: subprocess.Popen, request_id: int) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:  # bounded by the server: every line on stdout is a JSON-RPC message
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server closed stdout before answering request {request_id}")
        message = json.loads(line)
        if message.get("id") == request_id:
            return message


def mcp_spawn(
    cmd: list[str], env: dict[str, str], cwd: Path, tool: tuple[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """Spawn an MCP stdio server, time spawn -> initialize answer; optionally call a tool; RSS at rest."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        _send(proc, INIT)
        init = _answer(proc, 1)
        ready = time.perf_counter() - started
        assert "result" in init, init
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        if tool is not None:
            _send(
                proc,
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool[0], "arguments": tool[1]}},
            )
            answer = _answer(proc, 2)
            if answer.get("error") or answer.get("result", {}).get("isError"):
                raise RuntimeError(f"{tool[0]} failed: {answer}")
        time.sleep(1.0)
        rss = psutil.Process(proc.pid).memory_info().rss
        return {"seconds": ready, "rss_mb": rss / 2**20}
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def python_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def _postgres_pss_mb(pgdata: Path) -> float | None:
    """PSS of the postmaster whose -D is `pgdata` and of its children, in MiB."""
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].endswith("/postgres") and str(pgdata) in cmd:
            total = 0
            for q in [p, *p.children(recursive=True)]:
                try:
                    total += q.memory_full_info().pss
                except psutil.Error:
                    pass
            return total / 2**20
    return None


def tracker_start(data_dir: Path, log: Path, env: dict[str, str]) -> dict[str, Any]:
    t = spawn_tracker({"TRACKER_DATA_DIR": str(data_dir), **env}, log)
    try:
        seconds = t.ready - t.started
        time.sleep(1.0)
        rss = psutil.Process(t.proc.pid).memory_info().rss / 2**20
        pg = None if "TRACKER_DATABASE_URL" in env else _postgres_pss_mb((data_dir / "pg").resolve())
        return {"seconds": seconds, "rss_mb": rss, "postgres_pss_mb": pg}
    finally:
        t.stop()
        _wait_postgres_gone(data_dir / "pg")


def _wait_postgres_gone(pgdata: Path, timeout: float = 30.0) -> None:
    """The tracker stops its embedded server at exit; wait (bounded) until it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (pgdata / "postmaster.pid").exists():
        time.sleep(0.05)


def run(world: World, repeats: int, fresh_repeats: int) -> dict[str, Any]:
    tenant, key = world.tenant_key()
    tracker = world.tracker("startup")
    bridge_env = {"PATH": os.environ.get("PATH", ""), "TASK_TRACKING_URL": tracker.url, "TASK_TRACKING_API_KEY": key}
    plain_env = {"PATH": os.environ.get("PATH", "")}
    rows: dict[str, list[dict[str, Any]]] = {
        "python -c pass (floor)": [],
        "no-op MCP server: spawn -> initialize (floor)": [],
        "tracker-mcp: spawn -> initialize": [],
    }
    for _ in range(repeats):
        rows["python -c pass (floor)"].append({"seconds": python_floor()})
        rows["no-op MCP server: spawn -> initialize (floor)"].append(
            mcp_spawn([sys.executable, str(NOOP_SERVER)], plain_env, world.root, ("noop", {}))
        )
        rows["tracker-mcp: spawn -> initialize"].append(
            mcp_spawn(
                [str(TRACKER_MCP)],
                bridge_env,
                world.root,
                ("get_next_available_id", {"artifact_type": "US", "project_id": "startup"}),
            )
        )
    tracker.stop()

    serve: dict[str, list[dict[str, Any]]] = {
        "tracker serve -> healthy, external database (TRACKER_DATABASE_URL)": [],
        "tracker serve -> healthy, embedded, fresh data dir": [],
        "tracker serve -> healthy, embedded, existing data dir": [],
    }
    external = {"TRACKER_DATABASE_URL": world.url}
    for i in range(repeats):
        serve["tracker serve -> healthy, external database (TRACKER_DATABASE_URL)"].append(
            tracker_start(world.root / f"ext-{i}", world.root / f"ext-{i}.log", external)
        )
    for i in range(fresh_repeats):
        data = Path(f"/tmp/trk-bstart-{os.getpid()}-{i}")  # short: the socket lives in it
        shutil.rmtree(data, ignore_errors=True)
        try:
            serve["tracker serve -> healthy, embedded, fresh data dir"].append(
                tracker_start(data, world.root / f"fresh-{i}.log", {})
            )
            for j in range(max(1, repeats // fresh_repeats)):
                serve["tracker serve -> healthy, embedded, existing data dir"].append(
                    tracker_start(data, world.root / f"existing-{i}-{j}.log", {})
                )
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def table(groups: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        out = {}
        for name, runs in groups.items():
            row: dict[str, Any] = {"runs": len(runs), "startup": summarize([r["seconds"] for r in runs])}
            for field in ("rss_mb", "postgres_pss_mb"):
                values = [r[field] for r in runs if r.get(field) is not None]
                if values:
                    row[field] = sorted(values)[len(values) // 2]
            out[name] = row
        return out

    return {"mcp": table(rows), "serve": table(serve)}
