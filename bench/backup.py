"""Backup sync lag under a steady write load (issue 14): file:// and S3 (moto's server, offline).

One embedded PostgreSQL and one `tracker serve` per target with TRACKER_BACKUP_URL set. A client
thread writes at a fixed rate (paced, not closed loop: a slow answer does not lower the load), two
creates for each update of an earlier task (4 client threads), while a probe reads the backup cursor every 10 ms with
the database's clock. An event's lag is the first probe at which the cursor had passed it (its
objects are in the store: the cursor moves only after the upload) minus the event's created_at
(its transaction's start, a few ms before its commit). Both times are the database's, so no clock
is compared with another; the probe's period adds up to 10 ms. At the end every task must have its
object in the store.

    .venv/bin/python -m bench.backup [--rates 20,100] [--seconds 15] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.env import World, free_port
from bench.stats import summarize
from tracker_service.backup import objects
from tracker_service.backup.store import BackupStore

S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
PROBE_SECONDS = 0.01


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            return proc, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto did not start")


def write_load(base_url: str, key: str, rate: float, seconds: float, clients: int = 4) -> dict[str, Any]:
    """Writes at `rate` per second for `seconds` from `clients` threads (write i is due at i / rate):
    creates, and every third write an update of an earlier task."""
    keys: list[str] = []
    answers: list[float] = []
    late = [0]
    n = int(rate * seconds)
    start = time.perf_counter() + 0.1

    def client(first: int) -> None:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            for i in range(first, n, clients):
                due = start + i / rate
                now = time.perf_counter()
                if now < due:
                    time.sleep(due - now)
                elif now - due > 0.1:
                    late[0] += 1
                t0 = time.perf_counter()
                if i % 3 == 2 and keys:
                    resp = api.patch(f"/tasks/{keys[i // 2 % len(keys)]}", json={"notes": f"update {i}"})
                else:
                    resp = api.post("/tasks", json={"project": "bench", "title": f"task {i}"})
                    if resp.status_code == 201:
                        keys.append(resp.json()["key"])
                answers.append(time.perf_counter() - t0)
                if resp.status_code >= 300:
                    raise RuntimeError(f"write {i}: {resp.status_code} {resp.text[:200]}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"writes": n, "achieved_rate": n / elapsed, "late": late[0], "answer": summarize(answers), "keys": keys}


def probe(conninfo: str, name: str, stop: threading.Event, out: list[tuple[int, int, float]]) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(
                "SELECT txid::text, event_id, extract(epoch FROM clock_timestamp()) FROM backup_cursor WHERE name = %s",
                (name,),
            ).fetchone()
            if row is not None:
                out.append((int(row[0]), int(row[1]), float(row[2])))
            time.sleep(PROBE_SECONDS)


def caught_up(world: World, name: str) -> None:
    deadline = time.monotonic() + 300
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            behind = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM events e, backup_cursor c WHERE c.name = %s"
                " AND (e.txid, e.id) > (c.txid, c.event_id))"
                " OR NOT EXISTS (SELECT 1 FROM backup_cursor WHERE name = %s)",
                (name, name),
            ).fetchone()[0]  # type: ignore[index]
            if not behind:
                return
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not catch up with the log")


def run_target(world: World, label: str, url: str, endpoint: str | None, rate: float, seconds: float) -> dict:
    env = {"TRACKER_BACKUP_URL": url, **({"TRACKER_BACKUP_ENDPOINT_URL": endpoint} if endpoint else {})}
    tracker = world.tracker(f"{label}-{int(rate)}", **env)
    tenant, key = world.tenant_key()
    name = BackupStore(url, endpoint).url
    caught_up(world, name)  # a new target first copies the log so far: not part of the steady state
    samples: list[tuple[int, int, float]] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(world.libpq_url, name, stop, samples), daemon=True)
    prober.start()
    try:
        load = write_load(tracker.url, key, rate, seconds)
        with psycopg.connect(world.libpq_url, autocommit=True) as conn:
            events = conn.execute(
                "SELECT txid::text, id, extract(epoch FROM created_at) FROM events WHERE tenant = %s", (tenant,)
            ).fetchall()
        deadline = time.monotonic() + 120
        last = max((int(t), i) for t, i, _ in events)
        while time.monotonic() < deadline and not (samples and samples[-1][:2] >= last):
            time.sleep(0.05)
    finally:
        stop.set()
        prober.join(5)
        tracker.stop()
    lags = []
    for txid, event_id, created in events:
        seen = next((s[2] for s in samples if s[:2] >= (int(txid), event_id)), None)
        if seen is None:
            raise RuntimeError(f"{label}: event {event_id} never reached the store")
        lags.append(max(0.0, seen - float(created)))
    store = BackupStore(url, endpoint)
    keys = load.pop("keys")
    present = sum(1 for k in keys if store.exists(objects.task_path(tenant, "bench", k)))
    return {"target": label, "rate": rate, "seconds": seconds, "events": len(events), "lag": summarize(lags),
            "tasks": len(keys), "task_objects": present, **load}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__.split("\n")[0])
    p.add_argument("--rates", default="20,100", help="writes per second, comma-separated")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    os.environ.update(S3_ENV)  # for s3fs here and in the tracker processes (they inherit it)
    world = World.start()
    moto, endpoint = start_moto(world.root / "moto.log")
    results = []
    try:
        for rate in (float(r) for r in args.rates.split(",")):
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            BackupStore(f"s3://{bucket}", endpoint).fs.mkdir(bucket)
            for label, url, ep in (
                ("file", f"file://{world.root}/store-{int(rate)}", None),
                ("s3", f"s3://{bucket}/tracker", endpoint),
            ):
                result = run_target(world, label, url, ep, rate, args.seconds)
                results.append(result)
                lag, answer = result["lag"], result["answer"]
                print(
                    f"{label:4} {rate:5.0f}/s  events {result['events']:5}  lag median {lag['median']:7.1f} ms  "
                    f"p95 {lag['p95']:7.1f}  p99 {lag['p99']:7.1f}  max {lag['max']:7.1f}  |  write median "
                    f"{answer['median']:5.1f} ms p95 {answer['p95']:5.1f}  achieved {result['achieved_rate']:5.1f}/s  "
                    f"objects {result['task_objects']}/{result['tasks']}",
                    flush=True,
                )
    finally:
        moto.kill()
        world.close()
    if args.out:
        args.out.write_text(json.dumps({"results": results, "load_after": os.getloadavg()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
