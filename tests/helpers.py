from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem response with this status and code; return its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["title"] and body["detail"] and body["type"], body
    return body


def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


class SSEReader:
    """Reads a Server-Sent Events stream in a thread; events arrive on `queue` as dicts."""

    def __init__(
        self, base_url: str, key: str, params: dict[str, str] | None = None, last_event_id: str | None = None
    ) -> None:
        import queue
        import threading

        self.queue: queue.Queue[dict[str, str]] = queue.Queue()
        self.connected = threading.Event()
        headers = {"Authorization": f"Bearer {key}"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=httpx.Timeout(5, read=60))
        self._params = params or {}
        self.status: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "the SSE stream did not open"

    def _run(self) -> None:
        try:
            with self._client.stream("GET", "/events", params=self._params) as resp:
                self._response = resp
                self.status = resp.status_code
                fields: dict[str, str] = {}
                for line in resp.iter_lines():
                    if line.startswith(":"):
                        self.connected.set()
                    elif line == "":
                        if fields.get("data"):  # a comment-only message carries an empty data line
                            self.queue.put(fields)
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()

    def next(self, timeout: float = 10) -> dict[str, str]:
        return self.queue.get(timeout=timeout)

    def close(self) -> None:
        import socket

        resp = getattr(self, "_response", None)
        if resp is not None:
            # Unblock the reading thread: shut the socket down under it, as a client going away would.
            sock = resp.extensions["network_stream"].get_extra_info("socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(5)
        self._client.close()


@contextmanager
def running_worker(
    tracker_url: str, key: str, project: str, *command: str, task_type: str = "code", lease: int = 10
) -> Iterator[subprocess.Popen[str]]:
    """The reference worker (`tracker worker --type T -- COMMAND`) serving one project, stopped with SIGTERM."""
    env = {**os.environ, "TASK_TRACKING_URL": tracker_url, "TASK_TRACKING_API_KEY": key}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracker_service",
            "worker",
            "--type",
            task_type,
            "--project",
            project,
            "--name",
            "w1",
            "--lease",
            str(lease),
            "--",
            *command,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
