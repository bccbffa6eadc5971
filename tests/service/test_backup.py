"""The backup to an object store (tracker_service.backup), against file:// and a real S3-compatible
server (moto's server mode, started by the suite, offline). gs:// needs Google's servers: untested.

The syncer is driven in this process (the app built with TRACKER_BACKUP_URL); only the kill -9 and
takeover test runs real `tracker serve` processes. Backup tests use a database of their own: a new
backup target starts with the whole activity log, so it is kept small.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import TrackerProcess, free_port, start_tracker
from tests.helpers import ok
from tracker_service.backup import objects
from tracker_service.backup.store import BackupStore
from tracker_service.db.engine import migrate, normalize_url
from tracker_service.domain.keys.service import create_key
from tracker_service.domain.transfer.records import format_time

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll until condition() is truthy (returns it), or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def backup_db_url(pg_url: str) -> str:
    url = new_database(pg_url, f"tracker_backup_{os.getpid()}")
    migrate(url)
    return url


def new_database(pg_url: str, name: str) -> str:
    """An empty database on the test server; its URL."""
    admin = create_engine(normalize_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def backup_db(backup_db_url: str) -> Iterator[Engine]:
    engine = create_engine(normalize_url(backup_db_url))
    yield engine
    engine.dispose()


class MotoServer:
    """moto's S3 server as a subprocess on a fixed port, so it can be stopped and started again."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool:
            try:
                return httpx.get(f"{self.endpoint}/moto-api/", timeout=1).status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "moto server to start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def s3_credentials() -> Iterator[None]:
    # s3fs (botocore) reads credentials from the environment, as it would in production.
    with pytest.MonkeyPatch.context() as mp:
        for name, value in S3_CREDENTIALS.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory, s3_credentials: None) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


def new_bucket(endpoint: str) -> str:
    bucket = f"bk-{uuid.uuid4().hex[:12]}"
    BackupStore(f"s3://{bucket}", endpoint).fs.mkdir(bucket)
    return bucket


@pytest.fixture(params=["file", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh backup target: (TRACKER_BACKUP_URL, TRACKER_BACKUP_ENDPOINT_URL)."""
    if request.param == "file":
        return f"file://{tmp_path}/store", None
    server: MotoServer = request.getfixturevalue("moto")
    return f"s3://{new_bucket(server.endpoint)}/tracker", server.endpoint


@pytest.fixture
def tenant_key(backup_db: Engine) -> Callable[..., tuple[str, str]]:
    def make(role: str = "admin") -> tuple[str, str]:
        tenant = f"t-{uuid.uuid4().hex[:10]}"
        with backup_db.begin() as conn:
            key, _ = create_key(conn, name=f"{role}-key", tenant=tenant, role=role)
        return tenant, key

    return make


@pytest.fixture
def backup_app(backup_db_url: str) -> Iterator[Callable[..., Any]]:
    """The tracker in this process with its backup syncer on: a Litestar test client."""
    from litestar.testing import TestClient

    from tracker_service.app import create_app
    from tracker_service.settings import Settings

    clients: list[Any] = []

    def build(key: str, url: str, endpoint: str | None, **settings: Any) -> Any:
        base = {"database_url": backup_db_url, "sweep_interval_seconds": 3600, "rate_limit_per_minute": 0}
        app = create_app(Settings(**base, backup_url=url, backup_endpoint_url=endpoint, **settings))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        client.headers["Authorization"] = f"Bearer {key}"
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def read_json(store: BackupStore, path: str) -> Any:
    try:
        return json.loads(store.get(path))
    except FileNotFoundError:
        return None


def metric(text: str, name: str) -> float:
    """A label-less sample of the /metrics text (the metrics exist from import, at 0)."""
    values = [float(line.split()[1]) for line in text.splitlines() if line.startswith(f"{name} ")]
    assert values, f"{name} is not in /metrics"
    return values[0]


def journal(store: BackupStore, tenant: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    try:
        paths = store.find(f"{objects.segment(tenant)}/journal")
    except FileNotFoundError:
        return []
    for path in paths:
        try:
            data = store.get(path)
        except FileNotFoundError:
            # Listed, then gone for a moment: a repeated pass writes its journal object again, and
            # moto's server (unlike S3) can answer NoSuchKey while it replaces a key. Not there yet.
            continue
        lines.extend(json.loads(line) for line in data.decode().splitlines())
    return lines


def test_paths_keep_each_name_one_segment() -> None:
    assert objects.task_path("user:42", "web/app", "US-001") == "user:42/web%2Fapp/tasks/US-001.json"
    assert (
        objects.ids_path("t", "") == "t/@tenant/ids.json" and objects.ids_path("t", "@tenant") == "t/%40tenant/ids.json"
    )
    assert objects.segment("..") == "%2E%2E" and objects.unsegment("%2E%2E") == ".."
    assert objects.journal_path("t", "17", 5) == "t/journal/00000000000000000017-00000000000000000005.jsonl"


def test_every_kind_of_change_reaches_the_store(
    backup_app: Callable[..., Any], tenant_key: Callable[..., tuple[str, str]], target: tuple[str, str | None]
) -> None:
    tenant, key = tenant_key()
    api = backup_app(key, *target)
    store = BackupStore(*target)
    project = "web app"
    task = ok(api.post("/tasks", json={"project": project, "title": "Fix login", "priority": "high"}), 201)
    dep = ok(api.post("/tasks", json={"project": project, "title": "Then this", "depends_on": [task["key"]]}), 201)
    ok(api.post("/tasks/next", json={"project": project, "agent": "claude-1"}))
    ok(api.put(f"/tasks/{task['key']}/status", json={"status": "completed", "completion_notes": "done"}))
    gone = ok(api.post("/tasks", json={"project": project, "title": "Short-lived"}), 201)
    ok(api.delete(f"/tasks/{gone['key']}"), 204)
    handoff = ok(
        api.post(
            "/handoffs",
            json={"project": project, "task": "report", "direction": "cc_to_ai", "content": "# Report\n\nAll green."},
        ),
        201,
    )
    ok(api.patch(f"/handoffs/{handoff['id']}", json={"status": "read"}))
    ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)
    rid = ok(api.post("/ids/reserve", json={"type": "US", "count": 3, "project_id": project}), 201)["reservation_id"]
    ok(api.post(f"/ids/reservations/{rid}/release", json={"keep": []}))
    ok(api.put(f"/projects/{project}/settings", json={"requires_review": True, "reviewers": ["rita"]}))
    events = ok(api.get("/log", params={"limit": 100}))["entries"]
    assert len(events) >= 12

    task_path = objects.task_path(tenant, project, task["key"])
    assert task_path == f"{tenant}/web%20app/tasks/{task['key']}.json"
    wait_for(lambda: len(journal(store, tenant)) >= len(events), what="every event in the journal")

    done = read_json(store, task_path)
    assert done["status"] == "completed" and done["completion_notes"] == "done" and done["title"] == "Fix login"
    assert done["id"] == task["id"] and done["assigned_to"] == "claude-1" and done["tenant"] == tenant
    dep_doc = read_json(store, objects.task_path(tenant, project, dep["key"]))
    assert dep_doc["depends_on"] == [task["key"]] and dep_doc["depends_on_ids"] == [task["id"]]
    assert done["kind"] == "task" and done["created_at"].endswith("Z")  # a record of `tracker export`
    assert read_json(store, objects.task_path(tenant, project, gone["key"])) is None
    md = store.get(objects.handoff_path(tenant, project, handoff["id"])).decode()
    assert md.startswith("---\n") and md.endswith("# Report\n\nAll green."), md
    front = objects.parse_handoff(md.encode())
    assert front["status"] == "read" and front["direction"] == "cc_to_ai" and front["project"] == project
    assert front["task"] == "report" and front["response_to"] is None and front["created_at"]
    ids = read_json(store, objects.ids_path(tenant, project))
    assert [(c["type"], c["last_value"]) for c in ids["counters"]] == [("US", 4)]
    assert [(f["type"], f["value"]) for f in ids["free"]] == [("US", 2), ("US", 3), ("US", 4)]
    assert [r["status"] for r in ids["reservations"]] == ["released"]
    assert read_json(store, objects.settings_path(tenant, project))["reviewers"] == ["rita"]
    lines = journal(store, tenant)
    ids_in_log = [int(e["position"].split(".")[1]) for e in lines]
    assert ids_in_log == sorted(ids_in_log)  # passes one at a time, in order
    assert all(e["kind"] == "event" and e["tenant"] == tenant for e in lines)
    assert {e["type"] for e in lines} >= {"task.created", "task.deleted", "handoff.status", "id.released"}

    health = ok(api.get("/health"))
    assert health["backup"] == "ok" and float(health["backup_lag_seconds"]) == 0
    metrics = api.get("/metrics").text
    assert "tracker_backup_lag_seconds" in metrics and metric(metrics, "tracker_backup_delay_seconds_count") > 0


def test_an_unreachable_store_is_reported_and_caught_up(
    backup_app: Callable[..., Any],
    tenant_key: Callable[..., tuple[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
    s3_credentials: None,
) -> None:
    """Stop the S3 server, write, start it again: the writes were never held up, /health said
    failing, and the store catches up (moto keeps no data across restarts: the bucket is made anew)."""
    server = MotoServer(tmp_path_factory.mktemp("moto-down") / "moto.log")
    server.start()
    try:
        bucket = new_bucket(server.endpoint)
        url = f"s3://{bucket}/tracker"
        tenant, key = tenant_key()
        api = backup_app(key, url, server.endpoint, backup_lag_seconds=5)
        store = BackupStore(url, server.endpoint)
        first = ok(api.post("/tasks", json={"project": "p", "title": "before"}), 201)
        wait_for(lambda: read_json(store, objects.task_path(tenant, "p", first["key"])), what="the first task")

        failures = metric(api.get("/metrics").text, "tracker_backup_failures_total")
        server.stop()
        started = time.monotonic()
        written = [ok(api.post("/tasks", json={"project": "p", "title": f"while down {i}"}), 201) for i in range(5)]
        assert time.monotonic() - started < 5, "writes waited on the store"
        wait_for(lambda: ok(api.get("/health"))["backup"] == "failing", 60, "/health to say failing")
        assert metric(api.get("/metrics").text, "tracker_backup_failures_total") > failures

        server.start()
        BackupStore(url, server.endpoint).fs.mkdir(bucket)
        store = BackupStore(url, server.endpoint)
        for task in written:
            path = objects.task_path(tenant, "p", task["key"])
            assert wait_for(lambda p=path: read_json(store, p), 90, f"{path} after the store came back")["title"]
        wait_for(lambda: ok(api.get("/health"))["backup"] == "ok", 30, "/health to say ok again")
    finally:
        server.stop()


# --- real processes: kill -9 mid-sync, and a second tracker taking over ------------------------------------


def store_diff(store: BackupStore, db: Engine, tenant: str) -> str:
    """How the tenant's task objects differ from its tasks ("" when every task has its object with
    the current status and update time, and no other task object exists)."""
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT project, key, status, updated_at FROM tasks WHERE tenant = :t"), {"t": tenant}
        ).all()
    try:
        paths = {p for p in store.find(objects.segment(tenant)) if "/tasks/" in p}
    except FileNotFoundError:
        paths = set()
    expected = {objects.task_path(tenant, r.project, r.key): r for r in rows}
    if paths != set(expected):
        return f"missing {sorted(set(expected) - paths)[:3]}, extra {sorted(paths - set(expected))[:3]}"
    for path, row in expected.items():
        doc = read_json(store, path)
        if doc is None or (doc["status"], doc["updated_at"]) != (row.status, format_time(row.updated_at)):
            return f"{path}: {doc and (doc['status'], doc['updated_at'])} != {(row.status, row.updated_at)}"
    return ""


def wait_until_equal(store: BackupStore, db: Engine, tenant: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while diff := store_diff(store, db, tenant):
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout}s the store still differs from the database: {diff}")
        time.sleep(0.1)


def advisory_holders(db: Engine) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :c"),
                {"c": 0x7462616B},
            ).scalar_one()
        )


def test_kill_9_mid_sync_then_another_tracker_takes_over(
    backup_db_url: str,
    backup_db: Engine,
    tenant_key: Callable[..., tuple[str, str]],
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    url = f"s3://{new_bucket(moto.endpoint)}/tracker"
    env = {
        "TRACKER_DATABASE_URL": backup_db_url,
        "TRACKER_BACKUP_URL": url,
        "TRACKER_BACKUP_ENDPOINT_URL": moto.endpoint,
        **S3_CREDENTIALS,
    }
    tenant, key = tenant_key()
    store = BackupStore(url, moto.endpoint)
    first: TrackerProcess = start_tracker(env, tmp_path / "first.log")
    second: TrackerProcess | None = None
    try:
        wait_for(lambda: advisory_holders(backup_db) == 1, what="the first tracker to take the backup lock")
        second = start_tracker(env, tmp_path / "second.log")
        assert advisory_holders(backup_db) == 1
        headers = {"Authorization": f"Bearer {key}"}

        def behind() -> bool:
            with backup_db.connect() as conn:
                return bool(
                    conn.execute(
                        text("SELECT max(id) > (SELECT event_id FROM backup_cursor WHERE name = :n) FROM events"),
                        {"n": url},
                    ).scalar_one()
                )

        # Killed while a batch's objects are being copied: they go up concurrently and the cursor
        # moves only once all are in. A fast machine may copy a whole batch between two looks:
        # then another batch, until the kill lands mid-pass.
        with httpx.Client(base_url=first.url, headers=headers, timeout=30) as api:
            for n in range(10):
                batch = [{"project": "p", "title": f"task {n}.{i}", "description": "x" * 2000} for i in range(200)]
                keys = set(ok(api.post("/tasks/batch", json={"tasks": batch}), 201)["task_ids"])
                paths = {objects.task_path(tenant, "p", k) for k in keys}
                seen = lambda paths=paths: paths & set(store.find(objects.segment(tenant)))  # noqa: E731
                wait_for(seen, what=f"batch {n}'s first objects")
                if behind():
                    os.kill(first.proc.pid, signal.SIGKILL)
                    break
            else:
                pytest.fail("every batch was copied whole between two looks: no kill mid-pass")
        first.proc.wait(10)
        assert behind(), "the kill came after the pass had finished: nothing left to recover"
        with httpx.Client(base_url=second.url, headers=headers, timeout=30) as api:
            for i in range(10):
                ok(api.post("/tasks", json={"project": "p", "title": f"after {i}"}), 201)
            some = ok(api.get("/tasks", params={"project": "p", "limit": 5}))
            some = some["tasks"] if isinstance(some, dict) else some
            ok(api.delete(f"/tasks/{some[0]['key']}"), 204)
            ok(api.put(f"/tasks/{some[1]['key']}/status", json={"status": "cancelled"}))
        wait_until_equal(store, backup_db, tenant)

        assert advisory_holders(backup_db) == 1
    finally:
        first.stop()
        if second is not None:  # started second: it only waited until the first died
            second.stop()


def export_of(db: Engine, tenant: str) -> list[str]:
    import io

    from tracker_service.domain.transfer.export import export_lines

    out = io.StringIO()
    with db.connect() as conn:
        export_lines(conn, out, tenant=tenant)
    return out.getvalue().splitlines()


def test_restore_rebuilds_the_tenant_into_an_empty_database(
    backup_app: Callable[..., Any],
    backup_db: Engine,
    pg_url: str,
    tenant_key: Callable[..., tuple[str, str]],
    target: tuple[str, str | None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tracker_service.cli import main

    tenant, key = tenant_key()
    api = backup_app(key, *target)
    parent = ok(api.post("/tasks", json={"project": "p", "title": "Parent", "auto_complete": True}), 201)
    child = ok(api.post("/tasks", json={"project": "p", "title": "Child", "parent": parent["key"]}), 201)
    ok(api.post("/tasks", json={"project": "p", "title": "After", "depends_on": [child["key"]], "tags": ["x"]}), 201)
    gone = ok(api.post("/tasks", json={"project": "p", "title": "Gone"}), 201)
    waits = ok(api.post("/tasks", json={"project": "p", "title": "Waits on Gone", "depends_on": [gone["key"]]}), 201)
    waits_path = objects.task_path(tenant, "p", waits["key"])
    wait_for(lambda: read_json(BackupStore(*target), waits_path), what="the dependent's object")
    ok(api.delete(f"/tasks/{gone['key']}"), 204)  # the dependent's object still names it: no event for it
    first = ok(api.post("/handoffs", json={"project": "p", "task": "t", "direction": "cc_to_ai", "content": "Hi"}), 201)
    reply = {"project": "p", "task": "t", "direction": "ai_to_cc", "content": "Hello back", "response_to": first["id"]}
    ok(api.post("/handoffs", json=reply), 201)
    ok(api.post("/ids/next", json={"type": "US", "project_id": "p"}), 201)
    ok(api.post("/ids/reserve", json={"type": "BUG", "count": 2, "project_id": "p"}), 201)
    ok(api.put("/projects/p/settings", json={"requires_review": True, "reviewers": ["rita"]}))
    expected = export_of(backup_db, tenant)
    events = sum(1 for line in expected if '"kind":"event"' in line)
    wait_for(lambda: len(journal(BackupStore(*target), tenant)) == events, what="every event in the journal")
    assert read_json(BackupStore(*target), waits_path)["depends_on"] == [gone["key"]]  # restore drops it

    # An empty database of its own, as after losing the old one.
    url = new_database(pg_url, f"tracker_restore_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("TRACKER_DATABASE_URL", url)
    args = ["restore", "--from", target[0], "--tenant", tenant] + (["--endpoint-url", target[1]] if target[1] else [])
    assert main(args) == 0
    assert f"tenant {tenant}: created:" in capsys.readouterr().out
    restored = create_engine(normalize_url(url))
    try:
        assert export_of(restored, tenant) == expected  # the same records, byte for byte
        assert main(args) == 1  # a second restore into the same tenant is refused
        assert "already has tasks" in capsys.readouterr().err
    finally:
        restored.dispose()
