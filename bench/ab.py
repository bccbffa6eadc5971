"""A/B of two commits: one `tracker serve` of each on one database, requests interleaved.

    python -m bench.ab --base f2d3966                      # this checkout against that commit
    python -m bench.ab --base f2d3966 --ops status,next --calls 1000

The base commit is checked out with `git worktree` into a temporary folder, and each server runs
with its own checkout as working directory: `python -m` puts the working directory first on
sys.path, so PYTHONPATH alone would run this checkout's code twice. Both servers share the
embedded PostgreSQL, the tenant and the machine's moment: call i goes to A then B, call i+1 to B
then A, so noise from other processes falls on both alike. Per operation: the median and p95
latency of a `requests.Session` call (what the bridge uses), and the server process's CPU per call
(psutil, summed over the run).

Operations (each the REST request a bridge tool sends):
  status  PUT /tasks/{id}/status with an Idempotency-Key, completed and pending in turn
  next    GET /tasks/next (get_next_task without claim)
  get     GET /tasks/{id} (get_task)
  list    GET /tasks?project=..&limit=50 on 1,000 pending tasks
  id      POST /ids/next (no key: the raw REST caller's allocation)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from bench import seed
from bench.env import Tracker, World, spawn_tracker
from bench.stats import ratio, summarize

HERE = Path(__file__).resolve().parent.parent
OPS = ("status", "next", "get", "list", "id")


def _start(world: World, name: str, checkout: Path) -> Tracker:
    env = {"TRACKER_DATABASE_URL": world.url, "TRACKER_DATA_DIR": str(world.root / f"data-{name}")}
    here = Path.cwd()
    os.chdir(checkout)  # the child's working directory, and so its code (see the docstring)
    try:
        return spawn_tracker({**env, "PYTHONPATH": str(checkout)}, world.root / f"{name}.log")
    finally:
        os.chdir(here)


def _requests(session: requests.Session, url: str, task_id: str, project: str) -> dict[str, Callable[[int], Any]]:
    def status(i: int) -> requests.Response:
        body = {"status": "completed" if i % 2 == 0 else "pending"}
        return session.put(f"{url}/tasks/{task_id}/status", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})

    return {
        "status": status,
        "next": lambda i: session.get(f"{url}/tasks/next", params={"project": project}),
        "get": lambda i: session.get(f"{url}/tasks/{task_id}"),
        "list": lambda i: session.get(f"{url}/tasks", params={"project": project, "status": "pending", "limit": 50}),
        "id": lambda i: session.post(f"{url}/ids/next", json={"type": "AB", "project_id": project}),
    }


def run(base: str, ops: list[str], calls: int, warmup: int) -> dict[str, Any]:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        base_checkout = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_checkout), base], cwd=HERE, check=True)
        world = World.start()
        try:
            tenant, key = world.tenant_key()
            sides = {"A (this checkout)": HERE, f"B ({base})": base_checkout}
            trackers = {name: _start(world, f"ab-{i}", path) for i, (name, path) in enumerate(sides.items())}
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {key}"
            senders = {}
            with psycopg.connect(world.libpq_url, autocommit=True) as conn:
                for i, (name, t) in enumerate(trackers.items()):
                    project = f"ab-{i}"
                    seed.pending_tasks(conn, tenant, project, 1000, start=1 + 100_000 * i)  # keys are per tenant
                    task = session.post(f"{t.url}/tasks", json={"project": f"{project}-s", "title": "moved"}).json()
                    senders[name] = _requests(session, t.url, task["id"], project)
                conn.execute("VACUUM ANALYZE tasks")
            procs = {name: psutil.Process(t.proc.pid) for name, t in trackers.items()}
            results: dict[str, Any] = {}
            for op in ops:
                latency: dict[str, list[float]] = {name: [] for name in trackers}
                cpu = dict.fromkeys(trackers, 0.0)
                for i in range(warmup + calls):
                    order = list(trackers) if i % 2 == 0 else list(reversed(trackers))
                    for name in order:
                        before = sum(procs[name].cpu_times()[:2])
                        started = time.perf_counter()
                        resp = senders[name][op](i)
                        elapsed = time.perf_counter() - started
                        if resp.status_code >= 300:
                            raise RuntimeError(f"{name} {op}: {resp.status_code} {resp.text}")
                        if i >= warmup:
                            latency[name].append(elapsed)
                            cpu[name] += sum(procs[name].cpu_times()[:2]) - before
                results[op] = {
                    name: {**summarize(latency[name]), "server_cpu_ms": 1000 * cpu[name] / calls} for name in trackers
                }
                a, b = (results[op][name]["median"] for name in trackers)
                results[op]["a_over_b"] = ratio(a, b)
            return {"head": head.strip(), "base": base, "calls": calls, "load": os.getloadavg(), "ops": results}
        finally:
            world.close()
            subprocess.run(["git", "worktree", "remove", "--force", str(base_checkout)], cwd=HERE, check=False)


def render(r: dict[str, Any]) -> str:
    names = [n for n in next(iter(r["ops"].values())) if n != "a_over_b"]
    lines = [
        f"A = {r['head']} (this checkout), B = {r['base']}; {r['calls']} interleaved calls per operation; "
        f"load average after: {', '.join(f'{x:.2f}' for x in r['load'])}",
        "",
        "| operation | A median / p95 ms | B median / p95 ms | A / B (median) | A server CPU ms/call | B |",
        "|---|---|---|---:|---:|---:|",
    ]
    for op, sides in r["ops"].items():
        a, b = (sides[n] for n in names)
        lines.append(
            f"| {op} | {a['median']:.2f} / {a['p95']:.2f} | {b['median']:.2f} / {b['p95']:.2f} | "
            f"{sides['a_over_b']:.2f} | {a['server_cpu_ms']:.2f} | {b['server_cpu_ms']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare against (B)")
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated, of {', '.join(OPS)}")
    parser.add_argument("--calls", type=int, default=600, help="measured calls per side and operation")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    ops = args.ops.split(",")
    if unknown := set(ops) - set(OPS):
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    print(render(run(args.base, ops, args.calls, args.warmup)))


if __name__ == "__main__":
    main()
