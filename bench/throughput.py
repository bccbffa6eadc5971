"""2. Throughput of claims and ID allocations with 1, 8 and 32 concurrent clients, against the raw-SQL
floor at the same concurrency, plus the correctness checks: no task claimed twice, no ID issued twice.

Floor clients: N psycopg async connections, each running the single claim / counter statement in
autocommit. HTTP clients: N keep-alive connections (bench.rawhttp, one asyncio loop) to
- `tracker serve` with 1 and with 2 server processes (TRACKER_WORKERS; default pool 10 + 10 each);
- the ceiling app (bench.ceiling_app) with 1 and 2 processes: the same statement behind the same
  server stack with nothing else, i.e. the best a Litestar service reaches here for this work.
Each cell runs for a fixed time (and at most a fixed count); the five sides of a cell run one after
another, so they see the same machine within seconds of each other.

`--server granian` runs both HTTP sides on granian (a Rust HTTP server for ASGI apps, `pip install
granian`) instead of uvicorn: the tracker as `granian --factory tracker_service.app:create_app_from_env`
with the same settings, the ceiling app likewise, so the ratio still compares one stack with itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import floors, seed
from bench.env import World, free_port
from bench.profiling import cpu_seconds, postgres_pids
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


# What each HTTP server is asked, per operation: path, body for client i, expected status, result.
def _claim_request(tenant: str, project: str, i: int, ceiling: bool) -> tuple[str, dict[str, Any]]:
    body = {"project": project, "agent": f"agent-{i}"}
    return ("/claim", {**body, "tenant": tenant}) if ceiling else ("/tasks/next", body)


def _id_request(tenant: str, project: str, i: int, ceiling: bool) -> tuple[str, dict[str, Any]]:
    if ceiling:
        return "/allocate", {"tenant": tenant, "project": project, "type": "BENCH"}
    return "/ids/next", {"type": "BENCH", "project_id": project}


async def http_ops(
    server: Server, key: str, tenant: str, project: str, what: str, clients: int, seconds: float, max_ops: int
) -> dict[str, Any]:
    """`clients` keep-alive connections to one server doing claims or ID allocations."""
    conns = [await RawHttp("127.0.0.1", server.port, key).connect() for _ in range(clients)]
    request = _claim_request if what == "claim" else _id_request
    want = 200 if what == "claim" else 201

    async def op(i: int) -> Any:
        path, body = request(tenant, project, i, server.ceiling)
        status, answer = await conns[i].request("POST", path, body)
        if status != want:
            raise RuntimeError(f"{server.name}: {path} answered {status}: {answer}")
        if what == "id":
            return answer["number"]
        return answer["task"]["id"] if answer["task"] else None

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


@dataclass
class Server:
    name: str
    port: int
    ceiling: bool
    stop: Callable[[], None]
    pid: int  # the server's main process; with --workers its workers are its children


def _family(pid: int) -> list[int]:
    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return [pid]


class CpuMeter:
    """CPU time per operation of the server's processes, PostgreSQL's (postmaster and backends) and
    this client process, over one cell: where each side's cost goes, not only how fast it is.
    Backends are counted per process: one gone by the end (an earlier server's) counts for nothing,
    one started during the cell (the pool's) counts whole."""

    def __init__(self, world: World, server_pid: int) -> None:
        self.pgdata = (world.root / "db" / "pg").resolve()
        self.server = _family(server_pid)
        self.before = self._now()

    def _now(self) -> dict[str, dict[int, float]]:
        backends = postgres_pids(self.pgdata)
        return {
            "server": {pid: cpu_seconds([pid]) for pid in self.server},
            "postgres": {pid: cpu_seconds([pid]) for pid in backends},
            "client": {0: time.process_time()},
        }

    def per_op(self, ops: int) -> dict[str, float]:
        after = self._now()
        return {
            side: 1000 * sum(max(0.0, t - self.before[side].get(pid, 0.0)) for pid, t in now.items()) / max(1, ops)
            for side, now in after.items()
        }


SERVERS = ("uvicorn", "granian")


def _check_server(server: str) -> None:
    if server not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(SERVERS)}, got {server!r}")
    if server == "granian" and importlib.util.find_spec("granian") is None:
        raise RuntimeError("--server granian needs granian: pip install granian")


def _server_command(server: str, factory: str, port: int, workers: int) -> list[str]:
    """An ASGI app factory served on `port` as `tracker serve` serves its app (uvloop, no access log)."""
    if server == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory", factory),
            *("--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "1"),
            *("--no-ws", "--log-level", "warning"),
        ]
    return [
        *(sys.executable, "-m", "uvicorn", factory, "--factory", "--port", str(port)),
        *("--workers", str(workers), "--loop", "uvloop", "--http", "httptools"),
        *("--no-access-log", "--log-level", "warning"),
    ]


def _serve(world: World, name: str, factory: str, env: dict[str, str], workers: int, server: str) -> Server:
    port = free_port()
    log = (world.root / f"{name.replace(' ', '-')}-{server}.log").open("ab")
    proc = subprocess.Popen(
        _server_command(server, factory, port, workers),
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parent.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{name} on {server} did not start (see {log.name})")
        time.sleep(0.05)

    def stop() -> None:
        proc.terminate()
        proc.wait(20)

    return Server(name, port, factory.startswith("bench."), stop, proc.pid)


def ceiling_server(world: World, workers: int, server: str = "uvicorn") -> Server:
    """bench.ceiling_app with the tracker's server settings."""
    return _serve(
        world, f"ceiling x{workers}", "bench.ceiling_app:create_app", {"CEILING_DSN": world.libpq_url}, workers, server
    )


def _answers(port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()
        return True
    except OSError:
        return False


SIDES = ("floor", "ceiling x1", "tracker x1", "ceiling x2", "tracker x2")


def _floor_statement(what: str, tenant: str, project: str) -> tuple[str, Callable[[int], dict[str, Any]]]:
    if what == "claim":
        return floors.CLAIM, lambda i: {"tenant": tenant, "project": project, "agent": f"agent-{i}"}
    return floors.ALLOCATE, lambda i: {"tenant": tenant, "project": project, "type": "BENCH"}


def start_server(world: World, side: str, server: str = "uvicorn") -> Server:
    kind, workers = side.split(" x")
    if kind == "ceiling":
        return ceiling_server(world, int(workers), server)
    if server == "granian":  # the app `tracker serve --workers N` gives each worker, on granian
        env = {
            "TRACKER_DATABASE_URL": world.url,
            "TRACKER_DATA_DIR": str(world.root / f"throughput-granian-{workers}"),
            "TRACKER_LOG_LEVEL": "warning",
            "TRACKER_RATE_LIMIT_PER_MINUTE": "0",
        }
        return _serve(world, side, "tracker_service.app:create_app_from_env", env, int(workers), server)
    t = world.tracker(f"throughput-{workers}", TRACKER_WORKERS=workers)
    return Server(side, t.port, False, t.stop, t.proc.pid)


def run(
    world: World, levels: list[int], seconds: float, max_ops: int, server: str = "uvicorn", rounds: int = 1
) -> dict[str, Any]:
    """Per concurrency level and operation: the raw-SQL floor, then the same work over HTTP by the
    ceiling app and by `tracker serve`, each with 1 and with 2 server processes (this machine's cores).

    With rounds > 1 the five sides run that many times in turn, and each ratio is the median of the
    rounds' ratios: on a shared machine one round's sides can see very different neighbours."""
    _check_server(server)
    tenant, key = world.tenant_key()
    projects = {(n, r): _round_name(n, r, rounds) for n in levels for r in range(rounds)}
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        for (n, _), name in projects.items():
            for side in SIDES:
                seed.pending_tasks(conn, tenant, f"claim-{side}-{name}", max_ops + 8 * n)
        conn.execute("VACUUM ANALYZE tasks")

    cells: list[dict[str, Any]] = []
    for n in levels:
        for what in ("claim", "id"):
            measured = [
                {
                    side: _measure(
                        world, side, server, what, n, f"{what}-{side}-{projects[n, r]}", seconds, max_ops, key, tenant
                    )
                    for side in SIDES
                }
                for r in range(rounds)
            ]
            cells.append({"op": what, "clients": n, **_combine(measured)})
    return {
        "seconds_per_cell": seconds,
        "max_ops_per_cell": max_ops,
        "server": server,
        "rounds": rounds,
        "sides": list(SIDES),
        "cells": cells,
    }


def _round_name(clients: int, r: int, rounds: int) -> str:
    return f"{clients}-r{r}" if rounds > 1 else str(clients)


def _measure(
    world: World,
    side: str,
    server: str,
    what: str,
    n: int,
    project: str,
    seconds: float,
    max_ops: int,
    key: str,
    tenant: str,
) -> dict[str, Any]:
    """One side of one cell: its rate, latencies, CPU per operation and correctness check."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    if side == "floor":
        sql, params = _floor_statement(what, tenant, project)
        res = runner(floor(world, sql, params, n, seconds, max_ops))
    else:
        # One server at a time: all four at once would need more connections than PostgreSQL's
        # default max_connections (100) at 32 clients.
        running = start_server(world, side, server)
        try:
            meter = CpuMeter(world, running.pid)
            res = runner(http_ops(running, key, tenant, project, what, n, seconds, max_ops))
            res["cpu_ms_per_op"] = meter.per_op(res["ops"])  # before its processes end
        finally:
            running.stop()
    check = (_check_claims if what == "claim" else _check_ids)(world, tenant, project, res.pop("results"))
    return {**res, "check": check}


def _combine(measured: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The rounds of one cell as one row: per side the round with the median rate (its latencies and
    CPU as measured), every round's rate, and the ratios as medians of the rounds' own ratios."""
    row: dict[str, Any] = {}
    for side in SIDES:
        runs = sorted((m[side] for m in measured), key=lambda run: run["per_second"])
        row[side] = {
            **runs[len(runs) // 2],
            "per_second_rounds": [m[side]["per_second"] for m in measured],
            "check": _merged_checks([m[side]["check"] for m in measured]),
        }
    for side in SIDES[1:]:
        row[side]["ratio_to_floor"] = _median_ratio(measured, side, "floor")
    for workers in (1, 2):
        tr = row[f"tracker x{workers}"]
        tr["ratio_to_ceiling"] = _median_ratio(measured, f"tracker x{workers}", f"ceiling x{workers}")
        tr["goal_60pct"] = (tr["ratio_to_floor"] or 0) >= 0.6
    return row


def _median_ratio(measured: list[dict[str, dict[str, Any]]], side: str, base: str) -> float | None:
    ratios = [r for m in measured if (r := ratio(m[side]["per_second"], m[base]["per_second"])) is not None]
    return statistics.median(ratios) if ratios else None


def _merged_checks(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts added up, flags true only if true in every round."""
    merged: dict[str, Any] = {}
    for check in checks:
        for name, value in check.items():
            if isinstance(value, bool):
                merged[name] = merged.get(name, True) and value
            else:
                merged[name] = merged.get(name, 0) + value
    return merged
