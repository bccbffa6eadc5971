"""Fixtures for the bridge's tests.

Unit tests talk to the bridge through a real MCP client (in memory) and stub the tracker with
``responses`` at the requests transport, or with ``ScriptedTracker``, a real local HTTP server,
where the socket matters (refused connections, read timeouts, backoff, Retry-After).
"""

from __future__ import annotations

import json
import queue
import select
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
import responses
import urllib3.util.retry
from mcp import Client

from mcp_tools.client import TrackerClient
from mcp_tools.config import Config

from .bridge_support import API_KEY, TRACKER_MCP, URL, ToolCall, bridge_env, call_tool, with_bridge

T = TypeVar("T")
Bridge = Callable[[Callable[[Client], Awaitable[T]]], T]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep urllib3's Retry asks for, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(urllib3.util.retry, "time", SimpleNamespace(sleep=slept.append, time=time.time))
    return slept


@pytest.fixture
def config() -> Config:
    return Config(api_key=API_KEY, base_url=URL, timeout=5.0)


@pytest.fixture
def client(config: Config, sleeps: list[float]) -> Iterator[TrackerClient]:
    tracker = TrackerClient(config)
    yield tracker
    tracker.close()


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def call(client: TrackerClient) -> ToolCall:
    return lambda name, **arguments: call_tool(client, name, arguments)


# A real HTTP server, for behaviour that needs real sockets.


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    client_port: int


@dataclass
class ScriptedTracker:
    """Answers each request with the next scripted reply; records what it received."""

    url: str
    replies: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    hang: bool = False

    def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.replies.append((status, body, headers or {}))


@pytest.fixture
def scripted() -> Iterator[ScriptedTracker]:
    state = ScriptedTracker(url="")
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            state.seen.append(Seen(self.command, self.path, dict(self.headers), body, self.client_address[1]))
            if state.hang:
                release.wait(10)
                return
            status, body, headers = state.replies.pop(0) if state.replies else (500, {"detail": "unscripted"}, {})
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            ctype = "application/problem+json" if status >= 400 else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    release.set()
    server.shutdown()
    server.server_close()


@dataclass(eq=False)
class WatchConnection:
    """One ``GET /whoami/watch`` the bridge made; ``revoke()`` or ``drop()`` ends it from the tracker's side."""

    key: str
    status: int
    actions: queue.Queue[str] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)
    closed_by_bridge: bool = False

    def revoke(self) -> None:
        self.actions.put("revoke")

    def drop(self) -> None:
        self.actions.put("drop")

    def keep_alive(self) -> None:
        self.actions.put("keep-alive")


@dataclass
class WatchTracker:
    """A tracker that serves only ``/whoami/watch``, as the real one does, under the test's control."""

    url: str = ""
    connections: list[WatchConnection] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    def of(self, key: str) -> list[WatchConnection]:
        """The key's watch connections, oldest first."""
        return [c for c in self.connections if c.key == key]


@pytest.fixture
def watch_tracker() -> Iterator[WatchTracker]:
    state = WatchTracker()
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            conn = WatchConnection(key, 401 if key in state.refused else 200)
            state.connections.append(conn)
            try:
                self._serve(conn)
            finally:
                conn.ended.set()

        def _serve(self, conn: WatchConnection) -> None:
            if self.path != "/whoami/watch" or conn.status != 200:
                body = json.dumps({"status": 401, "code": "UNAUTHORIZED", "detail": "invalid or revoked API key"})
                self.send_response(401 if conn.status == 401 else 404)
                self.send_header("Content-Type", "application/problem+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()  # HTTP/1.0 without a length: the stream ends when the connection closes
            try:
                self._stream(conn)
            except (BrokenPipeError, ConnectionResetError):  # a write after the bridge closed it
                conn.closed_by_bridge = True

        def _stream(self, conn: WatchConnection) -> None:
            self.wfile.write(b": watching\n\n")
            self.wfile.flush()
            while not stopping.is_set():
                try:
                    action = conn.actions.get(timeout=0.01)
                except queue.Empty:
                    if self._closed_by_peer():
                        conn.closed_by_bridge = True
                        return
                    continue
                if action == "keep-alive":
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    continue
                if action == "revoke":
                    self.wfile.write(b'event: revoked\ndata: {"code": "UNAUTHORIZED", "detail": "revoked"}\n\n')
                return

        def _closed_by_peer(self) -> bool:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A local URL where nothing listens, so connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# The real bridge process, against the real tracker of tests/conftest.py


@pytest.fixture
def bridge(tracker_url: str, api_key: str, tmp_path: Path) -> Bridge[Any]:
    """Run steps against a fresh ``tracker-mcp`` stdio process of this test's tenant."""
    assert TRACKER_MCP.exists(), f"{TRACKER_MCP} missing: install the project (pip install -e '.[dev]')"
    env = bridge_env(tracker_url, api_key)
    return lambda steps: with_bridge(env, tmp_path, steps)
