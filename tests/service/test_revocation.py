"""Revoking a key reaches the requests it already holds open: event streams, the key watch the MCP
bridge keeps, and synchronous delegation waits all end within about a second."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.domain.keys.service import revoke_key

REVOCATION_BOUND_SECONDS = 3.0  # "about a second", with room for a loaded CI machine


class OpenStream:
    """Reads a stream in a thread and notes its frames and when it ended."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        path: str,
        params: dict[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.lines: list[str] = []
        self.ended_at: float | None = None
        self.status: int | None = None
        self.opened = threading.Event()
        self._client = client or client_for(base_url, key)
        self._thread = threading.Thread(target=self._run, args=(path, params or {}), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), f"{path} did not open"

    def _run(self, path: str, params: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", path, params=params, timeout=httpx.Timeout(5, read=60)) as resp:
                self.status = resp.status_code
                for line in resp.iter_lines():
                    self.lines.append(line)
                    self.opened.set()
        except httpx.HTTPError:
            pass
        finally:
            self.ended_at = time.monotonic()
            self.opened.set()

    def wait_end(self, timeout: float) -> float | None:
        self._thread.join(timeout)
        return self.ended_at


def revoke(db, name: str, tenant: str) -> float:  # type: ignore[no-untyped-def]
    with db.begin() as conn:
        assert revoke_key(conn, name, tenant=tenant)
    return time.monotonic()


def test_revocation_ends_event_streams_and_key_watches(tracker_url, make_key, db, tenant, project):
    key = make_key("write", name="streamer")
    other = make_key("write", name="bystander")
    events = OpenStream(tracker_url, key, "/events", {"project": project})
    watch = OpenStream(tracker_url, key, "/whoami/watch")
    bystander = OpenStream(tracker_url, other, "/whoami/watch")
    with client_for(tracker_url, key) as api:
        ok(api.post("/tasks", json={"project": project, "title": "seen before the revocation"}), 201)
        deadline = time.monotonic() + 10
        while not any(line == "event: task.created" for line in events.lines):
            assert time.monotonic() < deadline, events.lines
            time.sleep(0.01)
        revoked_at = revoke(db, "streamer", tenant)
        for stream in (events, watch):
            ended = stream.wait_end(REVOCATION_BOUND_SECONDS + 2)
            assert ended is not None, f"the stream was still open {REVOCATION_BOUND_SECONDS + 2} s after revocation"
            assert ended - revoked_at < REVOCATION_BOUND_SECONDS, ended - revoked_at
            assert "event: revoked" in stream.lines, stream.lines
        # Reconnecting with the revoked key is refused, so browsers and the bridge stop there.
        problem(api.get("/whoami"), 401, "UNAUTHORIZED")
    assert bystander.ended_at is None, "another key's watch must stay open"
    with client_for(tracker_url, other) as c:
        assert ok(c.get("/whoami"))["name"] == "bystander"


def test_hello_and_keep_alive_frames_carry_no_data(tracker_url, api_key):
    stream = OpenStream(tracker_url, api_key, "/events")
    deadline = time.monotonic() + 5
    while ": connected" not in stream.lines:
        assert time.monotonic() < deadline, stream.lines
        time.sleep(0.01)
    # An empty `data:` line would make a browser's EventSource fire an empty message.
    assert not any(line.startswith("data") for line in stream.lines), stream.lines


def test_revocation_ends_a_synchronous_delegation_wait(tracker_url, make_key, db, tenant, project):
    key = make_key("write", name="waiter")
    with client_for(tracker_url, key) as api, ThreadPoolExecutor(1) as pool:
        body = {
            "type": "code",
            "prompt": "never picked up",
            "sync": True,
            "options": {"project": project, "timeout": 60},
        }
        waiting = pool.submit(api.post, "/task/delegate", json=body)
        deadline = time.monotonic() + 10
        while not ok(api.get("/tasks", params={"project": project}))["tasks"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        revoked_at = revoke(db, "waiter", tenant)
        resp = waiting.result(timeout=REVOCATION_BOUND_SECONDS + 5)
        assert time.monotonic() - revoked_at < REVOCATION_BOUND_SECONDS
        assert "revoked" in problem(resp, 401, "UNAUTHORIZED")["detail"]


def test_whoami_names_the_key(tracker_url, make_key, tenant):
    key = make_key("read", name="reader")
    with client_for(tracker_url, key) as c:
        me = ok(c.get("/whoami"))
    assert (me["tenant"], me["name"], me["role"]) == (tenant, "reader", "read")
