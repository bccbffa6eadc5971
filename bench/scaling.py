"""3. Scaling: claim, next and list latency with 10k, 100k and 1M tasks in the tenant.

One tenant's table grows in steps (10k -> 100k -> 1M rows, seeded with INSERT ... SELECT
generate_series into the tracker's schema, then VACUUM ANALYZE as autovacuum would), spread over 10
projects with 75% completed, 20% pending and 5% in progress. At each size, one client
(http.client, keep-alive) measures, interleaved, against project p0 (a tenth of the rows):
  claim     POST /tasks/next            the partial index tasks_ready (each claimed task is handed
                                        back untimed with one UPDATE, so the pending set stays the same)
  next      GET  /tasks/next            the same candidate search, read only
  list      GET  /tasks?project=p0&status=pending&limit=50   page + total (kept by triggers)
  list all  GET  /tasks?project=p0&limit=50                  page + total over every status (kept by triggers)
and EXPLAIN (ANALYZE, BUFFERS) of the same statement shapes is kept for the largest size.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import psycopg

from bench import floors, seed
from bench.env import World
from bench.stats import ratio, summarize

PROJECTS = 10
OPS = ("claim", "next", "list pending", "list all")


class Http:
    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[float, Any]:
        payload = None if body is None else json.dumps(body).encode()  # bytes: one send() with the headers
        t = time.perf_counter()
        self.conn.request(method, path, body=payload, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {data[:300]!r}")
        return elapsed, json.loads(data)


def explain(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> str:
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params).fetchall()
    return "\n".join(r[0] for r in rows)


def run(world: World, sizes: list[int], samples: int, max_seconds_per_size: float) -> dict[str, Any]:
    tracker = world.tracker("scaling")
    tenant, key = world.tenant_key()
    out: list[dict[str, Any]] = []
    seeded = 0
    plans: dict[str, str] = {}
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        for size in sizes:
            t = time.perf_counter()
            if size > seeded:
                seed.mixed_tasks(conn, tenant, PROJECTS, seeded, size - 1)
                seeded = size
            seed_seconds = time.perf_counter() - t
            t = time.perf_counter()
            conn.execute("VACUUM ANALYZE tasks")
            vacuum_seconds = time.perf_counter() - t
            counts = dict(
                conn.execute(
                    "SELECT status, count(*) FROM tasks WHERE tenant = %s AND project = 'p0' GROUP BY status", (tenant,)
                ).fetchall()
            )
            client = Http(tracker.port, key)  # a fresh connection: uvicorn drops idle ones after 5 s
            lat: dict[str, list[float]] = {op: [] for op in OPS}
            # Warm the caches and the plan cache with a few untimed rounds, then measure.
            started = time.perf_counter()
            for i in range(samples + 5):
                if time.perf_counter() - started > max_seconds_per_size:
                    break
                timed = [
                    ("claim", "POST", "/tasks/next", {"project": "p0", "agent": "scaler"}),
                    ("next", "GET", "/tasks/next?project=p0", None),
                    ("list pending", "GET", "/tasks?project=p0&status=pending&limit=50", None),
                    ("list all", "GET", "/tasks?project=p0&limit=50", None),
                ]
                for op, method, path, body in timed:
                    elapsed, answer = client.call(method, path, body)
                    if op == "claim":
                        if answer["task"] is None:
                            raise RuntimeError("scaling project p0 ran out of pending tasks")
                        # Hand it back (untimed), so every size claims from the same pending set.
                        conn.execute(
                            "UPDATE tasks SET status = 'pending', assigned_to = NULL, lease_expires_at = NULL "
                            "WHERE id = %s",
                            (answer["task"]["id"],),
                        )
                    if i >= 5:
                        lat[op].append(elapsed)
            client.conn.close()
            out.append(
                {
                    "tasks": size,
                    "p0_by_status": counts,
                    "seed_seconds": seed_seconds,
                    "vacuum_analyze_seconds": vacuum_seconds,
                    "ops": {op: summarize(v) for op, v in lat.items()},
                }
            )
        params = {"tenant": tenant, "project": "p0", "agent": "scaler", "statuses": ["pending"]}
        plans["next (candidate search)"] = explain(conn, floors.NEXT, params)
        plans["list page (status=pending)"] = explain(conn, floors.LIST_PAGE, params)
        plans["list total (status=pending)"] = explain(conn, floors.LIST_TOTAL, params)
        plans["list total (every status)"] = explain(conn, floors.LIST_TOTAL_EVERY_STATUS, params)
        plans["count(*) of status=pending, as the total was before"] = explain(conn, floors.LIST_COUNT, params)
        table_mb = conn.execute("SELECT pg_total_relation_size('tasks') / 1048576.0").fetchone()[0]
    tracker.stop()
    first, last = out[0], out[-1]
    growth = {
        op: {
            "median_ratio": ratio(last["ops"][op]["median"], first["ops"][op]["median"]),
            "goal_1_5x": (ratio(last["ops"][op]["median"], first["ops"][op]["median"]) or 99) <= 1.5,
        }
        for op in OPS
    }
    return {
        "sizes": out,
        "growth_largest_vs_smallest": growth,
        "plans_at_largest": plans,
        "tasks_table_mb": float(table_mb),
    }
