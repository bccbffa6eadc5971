"""6. Board pages: a project's board, filtered and searched, next to the API's list call.

One project ("board") grows 10k -> 1M tasks (INSERT ... SELECT generate_series, bench.seed.board_tasks:
statuses in all seven columns, 20 agents, 1 in 50 tasks tagged, varied titles, a few parents), beside
100k tasks of the same tenant's other project and 100k of another tenant's project of the same name;
VACUUM ANALYZE after each step. At each size one keep-alive client (http.client), signed in to the
board like a browser (POST /board/signin, then the `tracker_session` cookie), measures, interleaved
with the order rotated each round, against a real `tracker serve`:
  board           GET /board/projects/board                 seven columns: page + card extras each
  board filtered  GET /board/projects/board?assignee=agent-03&tag=ui
  board search    GET /board/projects/board?q=webhook       title or key, case-insensitive
  API list        GET /tasks?project=board&limit=50         (Authorization: Bearer)
Each page's column counts (and the list's total) are first checked against a count in SQL, so a
filter that selected nothing, or an error page, cannot pass for a fast page.

At the largest size each board page is requested once more in process (the same app, built by
create_app, through Litestar's TestClient), every statement it sends through SQLAlchemy is recorded,
and each SELECT is run again under EXPLAIN (ANALYZE, BUFFERS) with the same parameters.

Runs on its own too: `python -m bench.board [--quick] [--out FILE]` (= `python -m bench --only board`).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import sys
import time
from typing import Any
from urllib.parse import urlencode

import psycopg

from bench import seed
from bench.env import World
from bench.stats import ratio, summarize

PROJECT = "board"
OTHER_PROJECT = "board-neighbour"
NEIGHBOUR_TASKS = 100_000
AGENT, TAG, WORDS = "agent-03", "ui", "webhook"
API_LIST = "API list"

# name -> (query of the board page, the same selection in SQL); the API list call is measured beside.
BOARD_VARIANTS: dict[str, tuple[dict[str, str], str]] = {
    "board": ({}, "TRUE"),
    "board filtered (assignee + tag)": (
        {"assignee": AGENT, "tag": TAG},
        "assigned_to = %(agent)s AND tags @> ARRAY[%(tag)s]",
    ),
    "board search (q)": ({"q": WORDS}, "(title ILIKE %(like)s OR key ILIKE %(like)s)"),
}
OPS = (*BOARD_VARIANTS, API_LIST)
SQL_PARAMS = {"agent": AGENT, "tag": TAG, "like": f"%{WORDS}%"}
_COLUMN = re.compile(r'<section class="column" data-status="(\w+)">\s*<h2>\w+ <span class="count">(\d+)</span>')


def board_path(query: dict[str, str]) -> str:
    return f"/board/projects/{PROJECT}" + (f"?{urlencode(query)}" if query else "")


def api_path() -> str:
    return f"/tasks?project={PROJECT}&limit=50"


class Client:
    """One keep-alive connection, as a browser tab (cookie) or an API client (bearer key) uses it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str, headers: dict[str, str]) -> tuple[float, bytes]:
        t = time.perf_counter()
        self.conn.request("GET", path, headers=headers)
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t
        if resp.status != 200:
            raise RuntimeError(f"GET {path} -> {resp.status}: {body[:300]!r}")
        return elapsed, body

    def sign_in(self, key: str) -> str:
        """POST /board/signin as the sign-in form does; the session cookie, ready for a Cookie header."""
        origin = f"http://127.0.0.1:{self.port}"
        self.conn.request(
            "POST",
            "/board/signin",
            body=urlencode({"key": key}).encode(),
            headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"},
        )
        resp = self.conn.getresponse()
        resp.read()
        cookie = resp.getheader("set-cookie") or ""
        if resp.status != 303 or not cookie.startswith("tracker_session="):
            raise RuntimeError(f"board sign-in -> {resp.status}, set-cookie {cookie[:40]!r}")
        return cookie.split(";", 1)[0]

    def close(self) -> None:
        self.conn.close()


def expected_counts(conn: psycopg.Connection, tenant: str, where: str) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT status, count(*) FROM tasks WHERE tenant = %(tenant)s AND project = %(project)s AND {where} "
        "GROUP BY status",
        {"tenant": tenant, "project": PROJECT, **SQL_PARAMS},
    ).fetchall()
    return {status: int(n) for status, n in rows}


def check_pages(
    client: Client, headers: dict[str, dict[str, str]], conn: psycopg.Connection, tenant: str
) -> dict[str, dict[str, int]]:
    """Each page once: its column counts must be the database's (and every column must be there)."""
    from tracker_service.domain.tasks.states import STATUSES

    shown: dict[str, dict[str, int]] = {}
    for name, (query, where) in BOARD_VARIANTS.items():
        _, body = client.get(board_path(query), headers["board"])
        counts = {status: int(n) for status, n in _COLUMN.findall(body.decode())}
        want = {status: 0 for status in STATUSES} | expected_counts(conn, tenant, where)
        if counts != want:
            raise RuntimeError(f"{name}: the page shows {counts}, the database has {want}")
        shown[name] = counts
    _, body = client.get(api_path(), headers["api"])
    total = json.loads(body)["total"]
    if total != sum(shown["board"].values()):
        raise RuntimeError(f"API list total {total} != {sum(shown['board'].values())} tasks in the project")
    return shown


def measure(
    client: Client, headers: dict[str, dict[str, str]], samples: int, warmup: int, max_seconds: float
) -> dict[str, list[float]]:
    requests = [(name, board_path(q), headers["board"]) for name, (q, _) in BOARD_VARIANTS.items()]
    requests.append((API_LIST, api_path(), headers["api"]))
    lat: dict[str, list[float]] = {name: [] for name in OPS}
    started = time.perf_counter()
    for i in range(warmup + samples):
        if i >= warmup and time.perf_counter() - started > max_seconds:
            break
        shift = i % len(requests)  # rotate, so no request always follows the same one
        for name, path, h in requests[shift:] + requests[:shift]:
            elapsed, _ = client.get(path, h)
            if i >= warmup:
                lat[name].append(elapsed)
    return lat


def run(world: World, sizes: list[int], samples: int, warmup: int, max_seconds_per_size: float) -> dict[str, Any]:
    tracker = world.tracker("board")
    tenant, key = world.tenant_key()
    other_tenant, _ = world.tenant_key()
    out: list[dict[str, Any]] = []
    seeded = 0
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        t = time.perf_counter()
        seed.board_tasks(conn, tenant, OTHER_PROJECT, 0, NEIGHBOUR_TASKS - 1)
        seed.board_tasks(conn, other_tenant, PROJECT, 0, NEIGHBOUR_TASKS - 1)
        neighbour_seconds = time.perf_counter() - t
        for size in sizes:
            t = time.perf_counter()
            if size > seeded:
                seed.board_tasks(conn, tenant, PROJECT, seeded, size - 1)
                seeded = size
            seed_seconds = time.perf_counter() - t
            conn.execute("VACUUM ANALYZE tasks")
            conn.execute("VACUUM ANALYZE task_totals")
            print(f"bench: board: {size:,} tasks seeded in {seed_seconds:.1f} s", file=sys.stderr, flush=True)
            client = Client(tracker.port)  # a fresh connection: uvicorn drops idle ones after 5 s
            headers = {"board": {"Cookie": client.sign_in(key)}, "api": {"Authorization": f"Bearer {key}"}}
            shown = check_pages(client, headers, conn, tenant)
            lat = measure(client, headers, samples, warmup, max_seconds_per_size)
            client.close()
            ops = {name: summarize(v) for name, v in lat.items()}
            out.append(
                {
                    "tasks": size,
                    "seed_seconds": seed_seconds,
                    "columns_shown": shown,
                    "ops": ops,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "board_over_list": {
                        name: {
                            "median": ratio(ops[name]["median"], ops[API_LIST]["median"]),
                            "p95": ratio(ops[name]["p95"], ops[API_LIST]["p95"]),
                        }
                        for name in BOARD_VARIANTS
                    },
                }
            )
        table_mb = conn.execute("SELECT pg_total_relation_size('tasks') / 1048576.0").fetchone()
    tracker.stop()
    return {
        "project": PROJECT,
        "neighbours": f"{NEIGHBOUR_TASKS:,} tasks in {OTHER_PROJECT} (same tenant) and in {PROJECT} of another tenant",
        "neighbour_seed_seconds": neighbour_seconds,
        "filters": {name: query for name, (query, _) in BOARD_VARIANTS.items()},
        "sizes": out,
        "tasks_table_mb": float(table_mb[0]) if table_mb else None,
        "statements_at_largest": explain_pages(world, key),
    }


def explain_pages(world: World, key: str) -> dict[str, Any]:
    """Every statement each board page sends through SQLAlchemy, with EXPLAIN (ANALYZE, BUFFERS) of
    each SELECT (in a read-only transaction), by the app built in process (create_app) on the same
    database. The sweeper's housekeeping, which shares the engine, is left out."""
    from litestar.testing import TestClient
    from sqlalchemy import event

    from tracker_service.app import create_app
    from tracker_service.settings import Settings

    settings = Settings(
        database_url=world.url,
        data_dir=world.root / "data-explain",
        rate_limit_per_minute=0,
        metrics=False,
        sweep_interval_seconds=3600,
    )
    app = create_app(settings)
    recorded: list[tuple[str, Any]] = []
    recording = [False]

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        task = asyncio.current_task()
        if recording[0] and (task is None or task.get_name() != "tracker-sweeper"):
            recorded.append((statement, parameters))

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
    pages: dict[str, list[tuple[str, Any]]] = {}
    with TestClient(app) as client:
        signed = client.post(
            "/board/signin", data={"key": key}, headers={"Origin": str(client.base_url)}, follow_redirects=False
        )
        if signed.status_code != 303:
            raise RuntimeError(f"in-process board sign-in -> {signed.status_code}")
        for name, (query, _) in BOARD_VARIANTS.items():
            client.get(board_path(query)).raise_for_status()  # warm, as the measured pages were
            recorded.clear()
            recording[0] = True
            client.get(board_path(query)).raise_for_status()
            recording[0] = False
            pages[name] = list(recorded)
    return {name: _explained(world, statements) for name, statements in pages.items()}


def _explained(world: World, statements: list[tuple[str, Any]]) -> dict[str, Any]:
    rows = []
    with psycopg.connect(world.libpq_url) as conn:
        conn.read_only = True
        for sql, params in statements:
            row: dict[str, Any] = {"sql": sql, "params": params}
            if sql.lstrip().upper().startswith("SELECT"):
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())
                found = re.search(r"Execution Time: ([\d.]+) ms", plan)
                row.update(plan=plan, ms=float(found.group(1)) if found else None)
            rows.append(row)
        conn.rollback()
    return {"statements": len(rows), "explained_ms_sum": sum(r.get("ms") or 0.0 for r in rows), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    from bench import run as suite

    args = sys.argv[1:] if argv is None else argv
    return suite.main(["--only", "board", *args], command="python -m bench.board " + " ".join(args))


if __name__ == "__main__":
    raise SystemExit(main())
