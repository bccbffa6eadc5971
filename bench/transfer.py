"""Export and import at 100k tasks (issue 14, "Data in and out").

One tenant is seeded in SQL: N tasks over 5 projects (bench.seed.mixed_tasks), a dependency on
the previous task for every tenth, a parent for every twentieth, one event per task, N/100
handoffs. Then, timed separately and repeated (median reported):
  export  export_lines() of the tenant into a file (what `tracker export --tenant T` runs);
  import  read_rows() + import_into() of that file into an empty second database, one transaction
          (what `tracker import dump.jsonl` runs: big kinds by COPY); emptied between runs;
  insert  the same with INSERT only (what POST /import's async driver does), for comparison;
  merge   the same file imported again on top of itself (every row found, nothing written).
The re-export of the imported database is compared with the dump (must be byte-identical).

    .venv/bin/python -m bench.transfer [--tasks N] [--runs N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import seed
from bench.env import World
from tracker_service import embedded
from tracker_service.db.engine import migrate, normalize_url
from tracker_service.domain.transfer import importing
from tracker_service.domain.transfer.export import export_lines
from tracker_service.domain.transfer.service import import_into, read_rows

TENANT = "bench-transfer"
TABLES = "events, task_dependencies, tasks, handoffs, conversation_messages, conversations, id_reservations, id_free, "
TABLES += "id_counters, project_settings"


def seed_tenant(world: World, tasks: int) -> float:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        seed.mixed_tasks(conn, TENANT, 5, 1, tasks)
        seed.advance_task_counter(conn, TENANT, "", tasks)
        conn.execute("ANALYZE tasks")  # else the joins below plan for an empty table (nested loops)
        conn.execute(
            """
            INSERT INTO task_dependencies (task_id, depends_on_id)
            SELECT t.id, d.id FROM tasks t JOIN tasks d ON d.tenant = t.tenant AND d.project = t.project
             AND d.key = 'TASK-' || lpad((substring(t.key FROM 6)::bigint - 5)::text, 7, '0')
            WHERE t.tenant = %s AND substring(t.key FROM 6)::bigint %% 10 = 0
            """,
            (TENANT,),
        )
        conn.execute(
            """
            UPDATE tasks t SET parent_id = p.id FROM tasks p
            WHERE t.tenant = %s AND p.tenant = t.tenant AND p.project = t.project
              AND substring(t.key FROM 6)::bigint %% 20 = 0
              AND p.key = 'TASK-' || lpad((substring(t.key FROM 6)::bigint - 10)::text, 7, '0')
            """,
            (TENANT,),
        )
        conn.execute(
            """
            INSERT INTO events (tenant, project, type, entity_id, actor, summary, data, created_at)
            SELECT tenant, project, 'task.created', key, 'seed', 'Task created: ' || title,
                   jsonb_build_object('priority', priority), created_at
            FROM tasks WHERE tenant = %s ORDER BY created_at
            """,
            (TENANT,),
        )
        conn.execute(
            """
            INSERT INTO handoffs (tenant, project, task, from_agent, to_agent, status, content, metadata)
            SELECT %s, 'p' || (i %% 5), 'slug-' || i, 'cc', 'ai', 'pending', 'Handoff ' || i || E'\\n\\nbody',
                   jsonb_build_object('i', i)
            FROM generate_series(1, %s) AS i
            """,
            (TENANT, max(1, tasks // 100)),
        )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    world = World.start()
    try:
        return _run(world, args)
    finally:
        world.close()


def _run(world: World, args: argparse.Namespace) -> int:
    seeded = seed_tenant(world, args.tasks)
    print(f"seeded {args.tasks} tasks in {seeded:.1f} s", file=sys.stderr)
    target_url = embedded.start(world.root / "db", database="tracker_bench_import")
    migrate(target_url)
    source, target = world.engine, create_engine(normalize_url(target_url))
    assert source is not None
    dump_path = world.root / "dump.jsonl"
    exports, imports, inserts, merges = [], [], [], []
    for run in range(args.runs):
        started = time.perf_counter()
        with source.connect() as conn, dump_path.open("w", encoding="utf-8", newline="\n") as out:
            lines = export_lines(conn, out, tenant=TENANT)
        exports.append(time.perf_counter() - started)
        with target.begin() as conn:
            conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY"))
        imports.append(_import(target, dump_path))
        with target.begin() as conn:
            conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY"))
        copy_from, importing._COPY_FROM = importing._COPY_FROM, sys.maxsize
        try:
            inserts.append(_import(target, dump_path))
        finally:
            importing._COPY_FROM = copy_from
        started = time.perf_counter()
        rows = read_rows("dump", tenant=None, content=dump_path.read_text(encoding="utf-8"))
        with target.begin() as conn:
            report = import_into(conn, rows, tenant=None)
        merges.append(time.perf_counter() - started)
        assert not report.created and not report.conflicts, report.as_dict()
        print(
            f"run {run + 1}: export {exports[-1]:.1f} s, import {imports[-1]:.1f} s, "
            f"insert {inserts[-1]:.1f} s, merge {merges[-1]:.1f} s",
            file=sys.stderr,
        )
    with target.connect() as conn, (world.root / "again.jsonl").open("w", encoding="utf-8", newline="\n") as out:
        export_lines(conn, out, tenant=TENANT)
    identical = (world.root / "again.jsonl").read_bytes() == dump_path.read_bytes()
    target.dispose()
    result: dict[str, Any] = {
        "tasks": args.tasks,
        "lines": lines,
        "dump_bytes": dump_path.stat().st_size,
        "seed_s": round(seeded, 2),
        "export_s": _summary(exports),
        "import_s": _summary(imports),
        "import_insert_only_s": _summary(inserts),
        "merge_s": _summary(merges),
        "round_trip_identical": identical,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if identical else 1


def _import(target: Any, dump_path: Path) -> float:
    started = time.perf_counter()
    rows = read_rows("dump", tenant=None, content=dump_path.read_text(encoding="utf-8"))
    with target.begin() as conn:
        import_into(conn, rows, tenant=None)
    return time.perf_counter() - started


def _summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(seconds), 2),
        "min": round(min(seconds), 2),
        "max": round(max(seconds), 2),
    }


if __name__ == "__main__":
    sys.exit(main())
