"""GET /ws with a real WebSocket client: the tenant's events, resumable, seed 004's names, ping/pong,
and a clean close when the key is revoked or was never valid."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import client_for
from tests.helpers import ok
from tests.service.test_revocation import REVOCATION_BOUND_SECONDS, revoke


def ws_url(tracker_url: str, **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return tracker_url.replace("http://", "ws://") + "/ws" + (f"?{params}" if params else "")


@contextmanager
def socket(tracker_url: str, key: str | None, **query: str) -> Iterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with connect(ws_url(tracker_url, **query), additional_headers=headers, open_timeout=10) as ws:
        yield ws


def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def next_event(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    while True:
        frame = receive(ws, timeout)
        if frame["type"] != "ping":
            return frame


def test_events_arrive_in_order_only_the_tenants_and_resume_from_a_position(tracker_url, api_key, make_key, project):
    other = make_key("write", tenant_name="ws-other-tenant")
    with socket(tracker_url, api_key, project=project) as ws, client_for(tracker_url, api_key) as api:
        assert receive(ws)["type"] == "connected"
        with client_for(tracker_url, other) as them:
            ok(them.post("/tasks", json={"project": project, "title": "not yours"}), 201)
        first = ok(api.post("/tasks", json={"project": project, "title": "one"}), 201)
        ok(api.post("/tasks", json={"project": project, "title": "two"}), 201)
        a, b = next_event(ws), next_event(ws)
        assert (a["type"], a["task_id"], a["project"]) == ("task.created", first["id"], project)
        assert b["summary"].endswith("two") and "not yours" not in a["summary"]
    # Resuming after the first event's position gives the second again, and what came after.
    with client_for(tracker_url, api_key) as api:
        ok(api.post("/tasks", json={"project": project, "title": "three"}), 201)
    with socket(tracker_url, api_key, project=project, after=a["position"]) as ws:
        assert receive(ws)["type"] == "connected"
        resumed = [next_event(ws)["summary"] for _ in range(2)]
        assert resumed[0].endswith(" two") and resumed[1].endswith(" three")


def test_seed_004_names_and_ping_pong(tracker_url, api_key, project):
    with socket(tracker_url, api_key, project=project, names="seed004") as ws, client_for(tracker_url, api_key) as api:
        receive(ws)
        ws.send(json.dumps({"type": "ping"}))
        assert next_event(ws) == {"type": "pong"}
        task = ok(api.post("/tasks", json={"project": project, "title": "seed 4"}), 201)
        ok(api.post("/tasks/next", json={"project": project, "agent": "w1"}))
        ok(api.put(f"/tasks/{task['id']}/status", json={"status": "completed", "agent": "w1"}))
        frames = [next_event(ws) for _ in range(3)]
        assert [f["type"] for f in frames] == ["task_created", "task_started", "task_completed"]
        assert [f["event"] for f in frames] == ["task.created", "task.claimed", "task.status"]
        assert {f["task_id"] for f in frames} == {task["id"]}


def test_revoking_the_key_closes_the_socket_with_4401(tracker_url, make_key, db, tenant):
    key = make_key("write", name="ws-watcher")
    with socket(tracker_url, key) as ws:
        receive(ws)
        revoked_at = revoke(db, "ws-watcher", tenant)
        last = next_event(ws, timeout=REVOCATION_BOUND_SECONDS + 2)
        assert last["type"] == "revoked"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert time.monotonic() - revoked_at < REVOCATION_BOUND_SECONDS
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.parametrize(
    ("key", "query", "code", "problem"),
    [
        (None, {}, 4401, "UNAUTHORIZED"),
        ("trk_not-a-key", {}, 4401, "UNAUTHORIZED"),
        ("VALID", {"after": "not-a-position"}, 4400, "INVALID_REQUEST"),
        ("VALID", {"names": "seed005"}, 4400, "INVALID_REQUEST"),
    ],
)
def test_a_bad_request_gets_an_error_frame_and_a_close_code(tracker_url, api_key, key, query, code, problem):
    with socket(tracker_url, api_key if key == "VALID" else key, **query) as ws:
        error = receive(ws)
        assert error["type"] == "error" and error["code"] == problem, error
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
