"""Routes marked AUTOCOMMIT run in autocommit without an Idempotency-Key, so each must do its
whole write in one SQL statement: two would commit separately and could be half done."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event, text

from tests.helpers import ok
from tracker_service.app import create_app
from tracker_service.db import hot
from tracker_service.db.engine import RequestConnection
from tracker_service.settings import Settings
from tracker_service.sweeper import Sweeper
from tracker_service.web.params import AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY

# Every single-statement route and a request that makes it write.
REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/tasks/next"): {"project": "{project}", "agent": "a1"},
    ("POST", "/mcp/tasks/next"): {"project": "{project}", "agent": "a2"},
    ("POST", "/ids/next"): {"type": "US", "project_id": "{project}"},
}


@pytest.fixture
def app_client(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # The sweeper's first round runs at start-up, alongside the first requests: its statements
    # would be counted as theirs.
    monkeypatch.setattr(Sweeper, "start", _not_started)
    app = create_app(Settings(database_url=pg_url, sweep_interval_seconds=3600, rate_limit_per_minute=0))
    with TestClient(app) as client:
        yield client


async def _not_started(self: Sweeper) -> None:
    return None


def single_statement_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get(AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY):
                found |= {(method, route.path) for method in handler.http_methods}
    return found


@pytest.fixture
def statements(app_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the app sends, through SQLAlchemy or straight on the driver (db.hot)."""
    seen: list[str] = []
    engine = app_client.app.state.engine.sync_engine

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    real_execute = hot.HotStatement._execute

    async def counted_execute(self, conn, params, fetch):  # type: ignore[no-untyped-def]
        seen.append(self.sql)
        return await real_execute(self, conn, params, fetch)

    monkeypatch.setattr(hot.HotStatement, "_execute", counted_execute)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)


def test_every_single_statement_route_writes_with_one_statement(app_client, statements, make_key, db, tenant):
    assert single_statement_routes(app_client.app) == set(REQUESTS), "add the new route to REQUESTS"
    key = make_key("write")
    project = f"single-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {key}"}
    for i in range(3):
        ok(app_client.post("/tasks", json={"project": project, "title": f"t{i}"}, headers=headers), 201)
    for (method, path), body in REQUESTS.items():
        payload = {k: v.format(project=project) for k, v in body.items()}
        statements.clear()
        resp = app_client.request(method, path, json=payload, headers=headers)
        assert resp.status_code in (200, 201), resp.text
        work = [s for s in statements if "api_keys" not in s]  # the key lookup (when not cached) is a read
        assert len(work) == 1, f"{method} {path} ran {len(work)} statements: {work}"
    # Each write was committed with its activity-log row (same statement, nothing left open).
    with db.connect() as conn:
        logged = conn.execute(
            text("SELECT type FROM events WHERE tenant = :t AND project = :p ORDER BY id"), {"t": tenant, "p": project}
        ).scalars()
        assert list(logged)[-3:] == ["task.claimed", "task.claimed", "id.allocated"]


def test_a_claim_with_an_idempotency_key_is_one_statement_in_autocommit_and_replays(
    app_client, statements, make_key, monkeypatch, db, tenant
):
    """The bridge sends a key with every claim: the claim, its log row and the key's record are one
    statement in autocommit (one round trip, no BEGIN/COMMIT); a repeat answers the same bytes,
    even after the task moved on, and claims nothing."""
    key = make_key("write")
    project = f"single-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {key}"}
    for i in range(2):
        ok(app_client.post("/tasks", json={"project": project, "title": f"t{i}"}, headers=headers), 201)
    autocommit: list[bool] = []
    counted = hot.HotStatement.first

    async def first_in_autocommit(self, conn, params):  # type: ignore[no-untyped-def]
        autocommit.append((await conn.get_raw_connection()).driver_connection.autocommit)
        return await counted(self, conn, params)

    monkeypatch.setattr(hot.HotStatement, "first", first_in_autocommit)
    once = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    statements.clear()
    first = app_client.post("/tasks/next", json={"project": project, "agent": "a"}, headers=once)
    assert first.status_code == 200, first.text
    work = [s for s in statements if "api_keys" not in s]
    assert len(work) == 1 and "idempotency_records" in work[0], work
    assert autocommit == [True]
    claimed = first.json()["task"]
    ok(app_client.put(f"/tasks/{claimed['id']}/status", json={"status": "completed", "agent": "a"}, headers=headers))
    again = app_client.post("/tasks/next", json={"project": project, "agent": "a"}, headers=once)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content, "the repeat answers what the first request answered, byte for byte"
    reused = app_client.post("/tasks/next", json={"project": project, "agent": "b"}, headers=once)
    assert reused.status_code == 422, reused.text
    other = ok(app_client.post("/tasks/next", json={"project": project, "agent": "a"}, headers=headers))
    assert other["task"]["id"] != claimed["id"]
    with db.connect() as conn:
        claims = conn.execute(
            text("SELECT count(*) FROM events WHERE tenant = :t AND project = :p AND type = 'task.claimed'"),
            {"t": tenant, "p": project},
        ).scalar()
    assert claims == 2, "the repeat and the refused reuse claimed nothing"


def test_an_empty_claim_with_a_key_is_recorded_too(app_client, make_key):
    headers = {"Authorization": f"Bearer {make_key('write')}", "Idempotency-Key": str(uuid.uuid4())}
    body = {"project": f"empty-{uuid.uuid4().hex[:8]}", "agent": "a"}
    first = ok(app_client.post("/tasks/next", json=body, headers=headers))
    assert first["task"] is None and first["hint"]
    again = app_client.post("/tasks/next", json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first


def test_key_cache_serves_repeat_requests_without_a_lookup(app_client, statements, make_key):
    hub = app_client.app.state.hub
    deadline = time.monotonic() + 10
    while not hub.keys.listening:  # the cache works only once the LISTEN connection is up
        assert time.monotonic() < deadline, "the LISTEN connection did not come up"
        time.sleep(0.01)
    before = hub.keys.token()
    key = make_key("read")
    headers = {"Authorization": f"Bearer {key}"}
    # Creating the key notifies every tracker process, which empties its cache: wait until this
    # one has heard it (with a deadline), or it could empty the cache between the requests below.
    deadline = time.monotonic() + 10
    while hub.keys.token() == before:
        assert time.monotonic() < deadline, "the key's creation was never heard"
        time.sleep(0.01)
    lookups = []
    for _ in range(3):
        statements.clear()
        ok(app_client.get("/ids/next", params={"type": "US", "project": "p"}, headers=headers))
        lookups.append(len([s for s in statements if "api_keys" in s]))
    assert lookups == [1, 0, 0], "a key is looked up once, then served from the cache"


def test_a_status_change_that_applies_is_one_statement(app_client, statements, make_key, db, tenant):
    """PUT /tasks/{ref}/status locks, checks, updates and logs in one statement; a refusal too
    (the statement answers why, with the row as it is)."""
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    project = f"status-{uuid.uuid4().hex[:8]}"
    task = ok(app_client.post("/tasks", json={"project": project, "title": "s"}, headers=headers), 201)
    claimed = ok(app_client.post("/tasks/next", json={"project": project, "agent": "a"}, headers=headers))["task"]
    assert claimed["lease_expires_at"]

    def put(ref: str, body: dict[str, Any], **params: str) -> tuple[dict[str, Any], list[str]]:
        statements.clear()
        resp = app_client.put(f"/tasks/{ref}/status", json=body, params=params, headers=headers)
        return resp, [s for s in statements if "api_keys" not in s and "idempotency" not in s]

    resp, work = put(task["key"], {"status": "pending", "agent": "a"}, project=project)  # released
    got = ok(resp)["updated_task"]
    assert len(work) == 1 and got["assigned_to"] is None and got["lease_expires_at"] is None
    resp, work = put(task["id"], {"status": "in_progress"})
    got = ok(resp)["updated_task"]
    assert len(work) == 1 and got["lease_expires_at"] and got["completed_at"] is None
    resp, work = put(task["key"], {"status": "completed", "completion_notes": "done", "result": {"n": 1}})
    got = ok(resp)["updated_task"]
    assert len(work) == 1
    assert got["completed_at"] and got["lease_expires_at"] is None
    assert (got["completion_notes"], got["result"]) == ("done", {"n": 1})
    resp, work = put(task["key"], {"status": "completed"})  # a repeat: nothing changes, nothing logged
    assert len(work) == 1 and ok(resp)["updated_task"]["completed_at"] == got["completed_at"]
    resp, work = put(task["key"], {"status": "completed", "completion_notes": "more"})
    assert len(work) == 1 and ok(resp)["updated_task"]["completion_notes"] == "more"
    resp, work = put(task["key"], {"status": "in_progress"})  # refused, by the same statement
    body = resp.json()
    assert body["code"] == "INVALID_TRANSITION" and body["current_status"] == "completed" and len(work) == 1
    with db.connect() as conn:
        logged = conn.execute(
            text("SELECT type, summary FROM events WHERE tenant = :t AND project = :p ORDER BY id"),
            {"t": tenant, "p": project},
        ).all()
    key = task["key"]
    assert [tuple(r) for r in logged] == [
        ("task.created", f"Task created: {key} s"),
        ("task.claimed", f"Task claimed by a: {key} s"),
        ("task.status", f"Task {key}: in_progress → pending"),
        ("task.status", f"Task {key}: pending → in_progress"),
        ("task.status", f"Task {key}: in_progress → completed"),
        ("task.updated", f"Task updated: {key} (completion_notes)"),
    ]


def test_reads_run_in_autocommit(app_client, make_key, monkeypatch):
    """A read is never in a transaction: at READ COMMITTED one gives it nothing (each statement
    takes its own snapshot anyway) and would cost a BEGIN and a ROLLBACK round trip."""
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    project = f"reads-{uuid.uuid4().hex[:8]}"
    ok(app_client.post("/tasks", json={"project": project, "title": "r"}, headers=headers), 201)
    engine = app_client.app.state.engine.sync_engine
    seen: list[tuple[str, bool]] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((path, conn.connection.driver_connection.autocommit))

    # Statements run through SQLAlchemy and straight on the driver (db.hot) alike.
    real_execute = hot.HotStatement._execute

    async def hot_execute(self, conn, params, fetch):  # type: ignore[no-untyped-def]
        seen.append((path, (await conn.get_raw_connection()).driver_connection.autocommit))
        return await real_execute(self, conn, params, fetch)

    monkeypatch.setattr(hot.HotStatement, "_execute", hot_execute)
    event.listen(engine, "before_cursor_execute", on_execute)
    paths = (f"/tasks?project={project}", f"/tasks/next?project={project}", "/tasks/TASK-001", "/ids")
    try:
        for path in paths:
            app_client.get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert {p for p, _ in seen} == set(paths), f"every read ran a statement: {seen}"
    assert all(autocommit for _, autocommit in seen), f"reads ran outside autocommit: {seen}"


def test_a_keyed_status_change_records_its_key_in_the_change_statement(app_client, statements, make_key):
    """With an Idempotency-Key, the change statement writes the key's record too: no separate key
    claim before it, no stored answer after it (BEGIN, the statement, COMMIT)."""
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    task = ok(
        app_client.post("/tasks", json={"project": f"k-{uuid.uuid4().hex[:8]}", "title": "s"}, headers=headers), 201
    )
    statements.clear()
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    ok(app_client.put(f"/tasks/{task['key']}/status", json={"status": "completed"}, headers=keyed))
    work = [s for s in statements if "api_keys" not in s]
    assert len(work) == 1 and "idempotency_records" in work[0], work


def test_a_task_and_the_next_one_are_read_with_one_statement_each(app_client, statements, make_key):
    """GET /tasks/{ref} finds the task by UUID or key and reads it in one statement, not resolve
    then fetch; GET /tasks/next is one statement too."""
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    project = f"get-{uuid.uuid4().hex[:8]}"
    task = ok(app_client.post("/tasks", json={"project": project, "title": "g"}, headers=headers), 201)
    for path, params in (
        (f"/tasks/{task['id']}", {}),
        (f"/tasks/{task['key']}", {}),
        (f"/tasks/{task['key']}", {"project": project}),
        ("/tasks/next", {"project": project}),
    ):
        statements.clear()
        got = ok(app_client.get(path, params=params, headers=headers))
        assert (got.get("task") or got)["id"] == task["id"]
        work = [s for s in statements if "api_keys" not in s]
        assert len(work) == 1, f"GET {path} ran {len(work)} statements: {work}"


def test_hot_routes_build_no_sqlalchemy_connection(app_client, make_key, monkeypatch):
    """Claims, ID allocations and the reads that are one prepared statement run on the request's
    psycopg connection alone: building and closing the SQLAlchemy Connection around it would cost
    0.06-0.12 ms of the server's CPU per request (db.engine.RequestConnection)."""
    hub = app_client.app.state.hub
    deadline = time.monotonic() + 10
    while not hub.keys.listening:  # cached keys need the LISTEN connection
        assert time.monotonic() < deadline, "the LISTEN connection did not come up"
        time.sleep(0.01)
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    project = f"hot-{uuid.uuid4().hex[:8]}"
    task = ok(app_client.post("/tasks", json={"project": project, "title": "t"}, headers=headers), 201)
    for title in ("u", "v"):  # two are claimed below, one is left for the reads of the next task
        ok(app_client.post("/tasks", json={"project": project, "title": title}, headers=headers), 201)
    built: list[str] = []
    wrap = RequestConnection.sync_connection

    def counted(self):  # type: ignore[no-untyped-def]
        built.append("built")
        return wrap.fget(self)

    monkeypatch.setattr(RequestConnection, "sync_connection", property(counted))
    keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    calls = {
        "POST /ids/next": lambda: app_client.post(
            "/ids/next", json={"type": "US", "project": project}, headers=headers
        ),
        "POST /tasks/next": lambda: app_client.post(
            "/tasks/next", json={"project": project, "agent": "a"}, headers=headers
        ),
        "POST /tasks/next, keyed": lambda: app_client.post(
            "/tasks/next", json={"project": project, "agent": "b"}, headers=keyed
        ),
        "GET /tasks/{key}": lambda: app_client.get(f"/tasks/{task['key']}", headers=headers),
        "GET /tasks/next": lambda: app_client.get("/tasks/next", params={"project": project}, headers=headers),
        "GET /tasks": lambda: app_client.get("/tasks", params={"project": project}, headers=headers),
    }
    for name, call in calls.items():
        built.clear()
        resp = call()
        assert resp.status_code < 300, resp.text
        assert not built, f"{name} built a SQLAlchemy Connection"
    # The count is live: a read through SQLAlchemy's execute (the peek at the next ID) builds one.
    ok(app_client.get("/ids/next", params={"type": "US", "project": project}, headers=headers))
    assert built, "a request through SQLAlchemy was not seen building its Connection"
