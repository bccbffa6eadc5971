"""CPU per request of the tracker's app and of the ceiling app, called in one process, in turn.

    python -m bench.inprocess                  # claims and ID allocations, 8 batches of 300 each
    python -m bench.inprocess --batches 12 --size 500

Both ASGI apps (the tracker's create_app and bench.ceiling_app) are built in this process and
called directly, one request at a time, with no HTTP server and no network: what is left is the
app's own work, its driver and PostgreSQL. Batches of each side alternate, so whatever else runs
on the machine falls on both alike; each figure is the median of the batches' CPU per request
(this process's CPU time, the app's share of a server's). The difference between the two is the
cost of what the tracker adds to the same statement: the key check, body validation, the
activity-log row, metrics, the request log, notifications. Throughput at 8 and 32 clients
(bench.throughput) is bounded by the same CPU, and swings far more with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from bench import seed
from bench.env import World

App = Any  # an ASGI application
T = TypeVar("T")


def _scope(method: str, path: str, body: bytes, key: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def call(app: App, method: str, path: str, body: bytes, key: str) -> int:
    """One request straight into the app; its status."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(method, path, body, key), receive, send)
    return sent[0]["status"]


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    """The app's start-up and shut-down, as a server would run them."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield
    finally:
        inbox.put_nowait({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def _measure(world: World, batches: int, size: int) -> dict[str, Any]:
    from bench.ceiling_app import create_app as ceiling_app
    from tracker_service.app import create_app
    from tracker_service.settings import Settings

    tenant, key = world.tenant_key()
    tasks = (batches + 1) * size + 100
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        for project in ("claim-ceiling", "claim-tracker"):
            seed.pending_tasks(conn, tenant, project, tasks)
        conn.execute("VACUUM ANALYZE tasks")
    os.environ["CEILING_DSN"] = world.libpq_url
    # As bench.throughput runs `tracker serve`: no rate limit, no access line per request.
    tracker = create_app(Settings.from_env(database_url=world.url, rate_limit_per_minute=0))
    ceiling = ceiling_app()
    logging.getLogger("tracker.access").setLevel(logging.WARNING)

    def body(value: dict[str, Any]) -> bytes:
        return json.dumps(value).encode()

    # (app, method, path, body) per side and operation: the same requests bench.throughput sends.
    requests = {
        "claim": {
            "ceiling": (ceiling, "/claim", body({"tenant": tenant, "project": "claim-ceiling", "agent": "a"})),
            "tracker": (tracker, "/tasks/next", body({"project": "claim-tracker", "agent": "a"})),
        },
        "id": {
            "ceiling": (ceiling, "/allocate", body({"tenant": tenant, "project": "id-ceiling", "type": "BENCH"})),
            "tracker": (tracker, "/ids/next", body({"type": "BENCH", "project_id": "id-tracker"})),
        },
    }
    results: dict[str, Any] = {}
    async with lifespan(tracker), lifespan(ceiling):
        for op, sides in requests.items():
            cpu = await in_turn(sides, key, batches, size)
            medians = {side: statistics.median(values) for side, values in cpu.items()}
            results[op] = {
                "cpu_ms_per_request": medians,
                "batches_ms": cpu,
                "tracker_over_ceiling": medians["tracker"] / medians["ceiling"],
            }
    return results


async def in_turn(
    sides: dict[str, tuple[App, str, bytes]], key: str, batches: int, size: int
) -> dict[str, list[float]]:
    """POST each side's body to its app in alternating batches: each side's CPU ms per request, per
    batch. A warm-up comes first, and a side that does not answer 2xx stops the run."""
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    for side, (app, path, payload) in sides.items():
        for _ in range(100):
            status = await call(app, "POST", path, payload, key)
        if status >= 300:
            raise RuntimeError(f"{side} POST {path} answered {status}")
    for _ in range(batches):
        for side, (app, path, payload) in sides.items():
            started = time.process_time()
            for _ in range(size):
                await call(app, "POST", path, payload, key)
            cpu[side].append(1000 * (time.process_time() - started) / size)
    return cpu


def measure_in_world(
    prog: str, doc: str, measure: Callable[[World, int, int], Awaitable[T]]
) -> tuple[T, argparse.Namespace]:
    """The command line of an in-process measure (--batches, --size) and a run of it on a fresh
    embedded PostgreSQL."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--size", type=int, default=300)
    args = parser.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        run = asyncio.run
    world = World.start()
    try:
        return run(measure(world, args.batches, args.size)), args
    finally:
        world.close()


def render(results: dict[str, Any], batches: int, size: int) -> str:
    lines = [
        f"CPU per request in process, median of {batches} batches of {size} (`python -m bench.inprocess`):",
        "",
        "| operation | ceiling ms | tracker ms | tracker - ceiling ms | tracker / ceiling |",
        "|---|---:|---:|---:|---:|",
    ]
    for op, r in results.items():
        c, t = r["cpu_ms_per_request"]["ceiling"], r["cpu_ms_per_request"]["tracker"]
        lines.append(f"| {op} | {c:.3f} | {t:.3f} | {t - c:+.3f} | {r['tracker_over_ceiling']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    results, args = measure_in_world("python -m bench.inprocess", __doc__ or "", _measure)
    print(render(results, args.batches, args.size))


if __name__ == "__main__":
    main()
