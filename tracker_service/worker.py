"""`tracker worker`: claims delegated tasks of one type, runs a command on each, reports the result.

The prompt goes to the command's stdin; files and options arrive as JSON in TRACKER_TASK_FILES
and TRACKER_TASK_OPTIONS. The lease is renewed while the command runs. New work wakes the
worker through the tracker's event stream, not by polling. SIGTERM stops the command, hands
the task back (pending) and exits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("tracker.worker")

# Each of stdout and stderr, counted JSON-encoded (escapes included, so a stream of control
# characters or emoji cannot grow past it when sent): the whole result stays well under the
# tracker's limit of 512 KiB per stored JSON value.
MAX_OUTPUT_CHARS = 200_000
_CUT_MARKER_ROOM = 64  # "\n[... N more characters cut]", encoded
IDLE_RECHECK_SECONDS = 30.0  # safety net in case the event stream is down


@dataclass
class Worker:
    base_url: str
    api_key: str
    task_type: str
    project: str
    name: str
    command: list[str]
    lease_seconds: int = 60
    stopping: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _child: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url.rstrip("/"), headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        threading.Thread(target=self._listen, daemon=True, name="worker-events").start()
        log.info("worker %s waiting for %s tasks in project %s", self.name, self.task_type, self.project)
        while not self.stopping.is_set():
            self._wake.clear()
            task = self._claim()
            if task is None:
                self._wake.wait(IDLE_RECHECK_SECONDS)
                continue
            self._work(task)
        self.http.close()
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping.set()
        self._wake.set()
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()

    def _claim(self) -> dict[str, Any] | None:
        body = {
            "project": self.project,
            "agent": self.name,
            "type": self.task_type,
            "lease_seconds": self.lease_seconds,
        }
        resp = self.http.post("/tasks/next", json=body)
        _raise_for(resp)
        return resp.json()["task"]

    def _work(self, task: dict[str, Any]) -> None:
        log.info("running %s: %s", task["key"], task["title"])
        inputs = task.get("inputs") or {}
        env = {
            **os.environ,
            "TRACKER_TASK_ID": task["id"],
            "TRACKER_TASK_KEY": task["key"],
            "TRACKER_TASK_TYPE": task.get("type") or "",
            "TRACKER_TASK_FILES": json.dumps(inputs.get("files", [])),
            "TRACKER_TASK_OPTIONS": json.dumps(inputs.get("options", {})),
        }
        self._child = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            errors="replace",
        )
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(zip(("out", "err"), self._communicate(task), strict=True)), daemon=True
        )
        runner.start()
        while runner.is_alive():
            runner.join(self.lease_seconds / 3)
            if runner.is_alive() and not self.stopping.is_set():
                self._heartbeat(task)
        code = self._child.wait()
        self._child = None
        if self.stopping.is_set():
            self._report(task, "pending", None, "worker stopped; task handed back")
            return
        result = {
            "success": code == 0,
            "output": _clip(outcome.get("out")),
            "error": _clip(outcome.get("err")) or None,
            "exit_code": code,
        }
        self._report(task, "completed" if code == 0 else "failed", result, f"exit code {code}")

    def _communicate(self, task: dict[str, Any]) -> tuple[str, str]:
        assert self._child is not None
        return self._child.communicate(task.get("description") or task["title"])

    def _heartbeat(self, task: dict[str, Any]) -> None:
        try:
            resp = self.http.post(
                f"/tasks/{task['id']}/heartbeat", json={"agent": self.name, "lease_seconds": self.lease_seconds}
            )
            if resp.status_code == 409:
                log.warning("lost the lease on %s: %s", task["key"], resp.json().get("detail"))
        except httpx.HTTPError as exc:
            log.warning("heartbeat failed: %s", exc)

    def _report(self, task: dict[str, Any], status: str, result: Any, notes: str) -> None:
        body = {"status": status, "result": result, "completion_notes": notes, "agent": self.name}
        resp = self.http.put(
            f"/tasks/{task['id']}/status",
            json=body,
            headers={"Idempotency-Key": f"worker-{self.name}-{task['id']}-{task['updated_at']}"},
        )
        if resp.status_code >= 400:
            log.error("could not report %s as %s: %s", task["key"], status, resp.text)
        else:
            log.info("%s %s", task["key"], status)

    def _listen(self) -> None:
        """Wake the claim loop on every change in the project (the tracker's SSE stream)."""
        while not self.stopping.is_set():
            try:
                with self.http.stream(
                    "GET", "/events", params={"project": self.project}, timeout=httpx.Timeout(10, read=60)
                ) as resp:
                    for line in resp.iter_lines():
                        if line.startswith("event:"):
                            self._wake.set()
                        if self.stopping.is_set():
                            return
            except (OSError, httpx.HTTPError):
                self.stopping.wait(2)


def _clip(text: str | None) -> str | None:
    """The text, or its longest start that fits MAX_OUTPUT_CHARS once JSON-encoded, marked as cut."""
    if text is None or (len(text) <= MAX_OUTPUT_CHARS and _encoded_length(text) <= MAX_OUTPUT_CHARS):
        return text
    budget = MAX_OUTPUT_CHARS - _CUT_MARKER_ROOM
    # Every character encodes to at least one, so the answer is at most `budget` characters long.
    fits, too_long = 0, min(len(text), budget) + 1
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if _encoded_length(text[:middle]) <= budget:
            fits = middle
        else:
            too_long = middle
    return text[:fits] + f"\n[... {len(text) - fits} more characters cut]"


def _encoded_length(text: str) -> int:
    # ASCII-only JSON is the longest encoding of a string (\uXXXX for every non-ASCII character,
    # two of them beyond the BMP), so it bounds the UTF-8 size of any JSON encoding of it.
    return len(json.dumps(text))


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        detail = resp.json().get("detail") if "json" in resp.headers.get("content-type", "") else resp.text
        raise SystemExit(
            f"tracker worker: {resp.request.method} {resp.request.url.path} -> {resp.status_code}: {detail}"
        )
