"""1. End to end: a real MCP client -> stdio -> `tracker-mcp` -> HTTP -> tracker -> PostgreSQL.

Each iteration runs, interleaved so that noise hits floors and tools alike:
  floors   a no-op MCP tool over stdio; a `requests.Session` GET /health; the raw SQL claim (psycopg)
  tools    get_next_task(claim), update_task_status, get_next_available_id, reserve_id_range(6),
           add_task(10), each through the real bridge process
  direct   the same REST request each tool makes, sent by a `requests.Session` from this process
           (with an Idempotency-Key, as the bridge sends on writes): the bridge's share is the gap
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import psycopg
import requests

from bench import floors, seed
from bench.env import World
from bench.mcp_session import bridge_params, connect, noop_params, ok
from bench.stats import ratio, summarize

TOOLS = ("get_next_task(claim)", "update_task_status", "get_next_available_id", "reserve_id_range(6)", "add_task(10)")
FLOORS = ("noop MCP tool (stdio)", "requests GET /health", "raw SQL claim (psycopg)")


def new_tasks(project: str, n: int) -> list[dict[str, Any]]:
    return [{"project_id": project, "title": f"bench task {i}", "priority": "medium"} for i in range(n)]


def run(world: World, iterations: int, warmup: int, max_seconds: float) -> dict[str, Any]:
    return anyio.run(_run, world, iterations, warmup, max_seconds)


async def _run(world: World, iterations: int, warmup: int, max_seconds: float) -> dict[str, Any]:
    tracker = world.tracker("e2e")
    tenant, key = world.tenant_key()
    total = iterations + warmup
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        seed.pending_tasks(conn, tenant, "e2e-claim", total + 10)
        seed.pending_tasks(conn, tenant, "e2e-direct", total + 10)
        seed.pending_tasks(conn, tenant, "e2e-floor", total + 10)
        conn.execute("VACUUM ANALYZE tasks")

    samples: dict[str, list[float]] = {name: [] for name in (*FLOORS, *TOOLS)}
    direct: dict[str, list[float]] = {name: [] for name in TOOLS}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    base = tracker.url

    def rest(method: str, path: str, body: Any = None) -> Any:
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method != "GET" else None
        r = session.request(method, base + path, json=body, headers=headers, timeout=10)
        r.raise_for_status()
        return r.json()

    pg = psycopg.connect(world.libpq_url, autocommit=True)
    claim_params = {"tenant": tenant, "project": "e2e-floor", "agent": "floor"}
    pg.execute(floors.CLAIM, claim_params, prepare=True).fetchone()  # prepared, as SQLAlchemy's psycopg is not

    started = time.perf_counter()
    done = 0
    async with (
        connect(noop_params(world.root), world.root / "noop.stderr") as noop,
        connect(bridge_params(base, key, world.root), world.root / "bridge.stderr") as bridge,
    ):
        for i in range(total):
            if time.perf_counter() - started > max_seconds:
                break
            measured = i >= warmup
            rec: dict[str, float] = {}

            t = time.perf_counter()
            ok(await noop.call_tool("noop", {"value": "x"}), "noop")
            rec[FLOORS[0]] = time.perf_counter() - t

            t = time.perf_counter()
            session.get(base + "/health", timeout=10).raise_for_status()
            rec[FLOORS[1]] = time.perf_counter() - t

            t = time.perf_counter()
            row = pg.execute(floors.CLAIM, claim_params, prepare=True).fetchone()
            rec[FLOORS[2]] = time.perf_counter() - t
            assert row is not None, "floor project ran out of pending tasks"

            t = time.perf_counter()
            task = ok(
                await bridge.call_tool(
                    "get_next_task", {"project_id": "e2e-claim", "claim": True, "agent": "bench-agent"}
                ),
                "get_next_task",
            )["task"]
            rec[TOOLS[0]] = time.perf_counter() - t
            assert task is not None, "claim project ran out of pending tasks"

            t = time.perf_counter()
            ok(
                await bridge.call_tool(
                    "update_task_status",
                    # By UUID: the key exists in each of this run's projects (the tool takes no project).
                    {"task_id": task["id"], "status": "completed", "completion_notes": "done"},
                ),
                "update_task_status",
            )
            rec[TOOLS[1]] = time.perf_counter() - t

            t = time.perf_counter()
            ok(await bridge.call_tool("get_next_available_id", {"artifact_type": "US", "project_id": "e2e"}), "next id")
            rec[TOOLS[2]] = time.perf_counter() - t

            t = time.perf_counter()
            ok(
                await bridge.call_tool("reserve_id_range", {"artifact_type": "SPEC", "count": 6, "project_id": "e2e"}),
                "reserve_id_range",
            )
            rec[TOOLS[3]] = time.perf_counter() - t

            t = time.perf_counter()
            ok(await bridge.call_tool("add_task", {"tasks": new_tasks("e2e-add", 10)}), "add_task")
            rec[TOOLS[4]] = time.perf_counter() - t

            # The same REST requests without MCP and without the bridge process.
            d: dict[str, float] = {}
            t = time.perf_counter()
            claimed = rest("POST", "/tasks/next", {"project": "e2e-direct", "agent": "bench-direct"})["task"]
            d[TOOLS[0]] = time.perf_counter() - t
            t = time.perf_counter()
            rest(
                "PUT",
                f"/tasks/{claimed['key']}/status?project=e2e-direct",
                {"status": "completed", "completion_notes": "done"},
            )
            d[TOOLS[1]] = time.perf_counter() - t
            t = time.perf_counter()
            rest("POST", "/ids/next", {"type": "US", "project_id": "e2e-direct"})
            d[TOOLS[2]] = time.perf_counter() - t
            t = time.perf_counter()
            rest("POST", "/ids/reserve", {"type": "SPEC", "count": 6, "project_id": "e2e-direct"})
            d[TOOLS[3]] = time.perf_counter() - t
            t = time.perf_counter()
            rest("POST", "/tasks/batch", {"tasks": new_tasks("e2e-direct-add", 10)})
            d[TOOLS[4]] = time.perf_counter() - t

            if measured:
                for name, value in rec.items():
                    samples[name].append(value)
                for name, value in d.items():
                    direct[name].append(value)
                done += 1
    pg.close()
    session.close()
    tracker.stop()

    stats = {name: summarize(values) for name, values in samples.items()}
    direct_stats = {name: summarize(values) for name, values in direct.items()}
    floor_sum = {q: sum(stats[f][q] for f in FLOORS) for q in ("median", "p95", "p99")}
    tools = {}
    for name in TOOLS:
        s = stats[name]
        tools[name] = {
            **s,
            "ratio_median_to_floor_sum": ratio(s["median"], floor_sum["median"]),
            "direct_rest": direct_stats[name],
            "goal_median_1_5x": (s["median"] <= 1.5 * floor_sum["median"]),
            "goal_p95_15ms": s["p95"] < 15.0,
        }
    return {
        "iterations": done,
        "warmup": warmup,
        "seconds": time.perf_counter() - started,
        "floors": {name: stats[name] for name in FLOORS},
        "floor_sum": floor_sum,
        "tools": tools,
    }
