"""Fixtures for the bridge's tests.

Unit tests talk to the bridge through a real MCP client (in memory) and stub the tracker with
``responses`` at the requests transport, or with ``ScriptedTracker``, a real local HTTP server,
where the socket matters (refused connections, read timeouts, backoff, Retry-After).
"""

from __future__ import annotations

import json
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
