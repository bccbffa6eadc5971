"""2. Throughput of claims and ID allocations with 1, 8 and 32 concurrent clients, against the raw-SQL
floor at the same concurrency, plus the correctness checks: no task claimed twice, no ID issued twice.

Tracker clients: N keep-alive HTTP connections (bench.rawhttp, one asyncio loop) to one
`tracker serve` process with its default pool (10 + 10 overflow). Floor clients: N psycopg async
connections, each running the single claim / counter statement in autocommit. Each cell runs for a
fixed time (and at most a fixed count), floors and tracker alternating per concurrency level.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from bench import floors, seed
from bench.env import World
from bench.rawhttp import RawHttp
from bench.stats import ratio, summarize

Op = Callable[[int], Awaitable[Any]]  # client index -> result (None: nothing left, stop)


async def drive(clients: int, op: Op, seconds: float, max_ops: int) -> dict[str, Any]:
    """Run `clients` loops of `op` until the time or the count is used up; return rate and latencies."""
    latencies: list[float] = []
    results: list[Any] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def loop(i: int) -> None:
        while time.perf_counter() < deadline and len(results) < max_ops:
            t = time.perf_counter()
            r = await op(i)
            latencies.append(time.perf_counter() - t)
            if r is None:
                return
            results.append(r)

    await asyncio.gather(*(loop(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "ops": len(results),
        "seconds": elapsed,
        "per_second": len(results) / elapsed,
        "latency": summarize(latencies),
        "results": results,
    }


async def tracker_claims(world: World, port: int, key: str, project: str, clients: int, seconds: float, max_ops: int):
    conns = [await RawHttp("127.0.0.1", port, key).connect() for _ in range(clients)]

    async def op(i: int) -> Any:
        status, body = await conns[i].request("POST", "/tasks/next", {"project": project, "agent": f"agent-{i}"})
        if status != 200:
            raise RuntimeError(f"claim answered {status}: {body}")
        return body["task"]["id"] if body["task"] else None

    try:
        return await drive(clients, op, seconds, max_ops)
    finally:
        for c in conns:
            await c.close()


async def tracker_ids(world: World, port: int, key: str, project: str, clients: int, seconds: float, max_ops: int):
    conns = [await RawHttp("127.0.0.1", port, key).connect() for _ in range(clients)]

    async def op(i: int) -> Any:
        status, body = await conns[i].request("POST", "/ids/next", {"type": "BENCH", "project_id": project})
        if status != 201:
            raise RuntimeError(f"allocation answered {status}: {body}")
        return body["number"]

    try:
        return await drive(clients, op, seconds, max_ops)
    finally:
        for c in conns:
            await c.close()


async def floor(
    world: World, sql: str, params: Callable[[int], dict[str, Any]], clients: int, seconds: float, max_ops: int
):
    conns = [await psycopg.AsyncConnection.connect(world.libpq_url, autocommit=True) for _ in range(clients)]

    async def op(i: int) -> Any:
        row = await (await conns[i].execute(sql, params(i), prepare=True)).fetchone()
        return row[0] if row else None

    try:
        return await drive(clients, op, seconds, max_ops)
    finally:
        for c in conns:
            await c.close()


def _check_claims(world: World, tenant: str, project: str, results: list[Any]) -> dict[str, Any]:
    with psycopg.connect(world.libpq_url) as conn:
        in_progress = conn.execute(
            "SELECT count(*) FROM tasks WHERE tenant = %s AND project = %s AND status = 'in_progress'",
            (tenant, project),
        ).fetchone()[0]
    ids = [str(r) for r in results]
    return {
        "claimed": len(ids),
        "double_claims": len(ids) - len(set(ids)),
        "rows_in_progress": in_progress,
        "ok": len(ids) == len(set(ids)) == in_progress,
    }


def _check_ids(world: World, tenant: str, project: str, results: list[Any]) -> dict[str, Any]:
    with psycopg.connect(world.libpq_url) as conn:
        last = conn.execute(
            "SELECT last_value FROM id_counters WHERE tenant = %s AND project = %s AND type = 'BENCH'",
            (tenant, project),
        ).fetchone()
    values = [int(r) for r in results]
    gapless = sorted(values) == list(range(1, len(values) + 1))
    return {
        "allocated": len(values),
        "duplicate_ids": len(values) - len(set(values)),
        "counter": last[0] if last else 0,
        "gapless": gapless,
        "ok": len(values) == len(set(values)) and gapless and (last[0] if last else 0) == len(values),
    }


def run(world: World, levels: list[int], seconds: float, max_ops: int) -> dict[str, Any]:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    tracker = world.tracker("throughput")
    tenant, key = world.tenant_key()
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        for n in levels:
            seed.pending_tasks(conn, tenant, f"claim-floor-{n}", max_ops + 8 * n)
            seed.pending_tasks(conn, tenant, f"claim-tracker-{n}", max_ops + 8 * n)
        conn.execute("VACUUM ANALYZE tasks")

    cells: list[dict[str, Any]] = []
    for n in levels:
        for what in ("claim", "id"):
            row: dict[str, Any] = {"op": what, "clients": n}
            for side in ("floor", "tracker"):
                project = f"{what}-{side}-{n}"
                if what == "claim" and side == "floor":
                    res = runner(
                        floor(
                            world,
                            floors.CLAIM,
                            lambda i, p=project: {"tenant": tenant, "project": p, "agent": f"agent-{i}"},
                            n,
                            seconds,
                            max_ops,
                        )
                    )
                elif what == "claim":
                    res = runner(tracker_claims(world, tracker.port, key, project, n, seconds, max_ops))
                elif side == "floor":
                    res = runner(
                        floor(
                            world,
                            floors.ALLOCATE,
                            lambda i, p=project: {"tenant": tenant, "project": p, "type": "BENCH"},
                            n,
                            seconds,
                            max_ops,
                        )
                    )
                else:
                    res = runner(tracker_ids(world, tracker.port, key, project, n, seconds, max_ops))
                check = (_check_claims if what == "claim" else _check_ids)(world, tenant, project, res.pop("results"))
                row[side] = {**res, "check": check}
            row["ratio_to_floor"] = ratio(row["tracker"]["per_second"], row["floor"]["per_second"])
            row["goal_60pct"] = (row["ratio_to_floor"] or 0) >= 0.6
            cells.append(row)
    tracker.stop()
    return {"seconds_per_cell": seconds, "max_ops_per_cell": max_ops, "cells": cells}
