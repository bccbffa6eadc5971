"""`tracker worker`: claims delegated tasks of one type, runs a command on each, reports the result.

The prompt goes to the command's stdin; files and options arrive as JSON in TRACKER_TASK_FILES
and TRACKER_TASK_OPTIONS. The lease is renewed while the command runs. New work wakes the
worker through the tracker's event stream, not by polling. SIGTERM stops the command, hands
the task back (pending) and exits.

The worker outlives the tracker's restarts and its database's: a claim or a report that meets
a connection error, a timeout, a 429 or a 5xx is sent again after a wait (the answer's
Retry-After, else a capped exponential backoff), with the same Idempotency-Key, so a repeat of
a request that did arrive does nothing twice. Only a 4xx that repeating cannot fix (a wrong or
revoked key above all) ends it, with exit code 1 and one line saying why.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

log = logging.getLogger("tracker.worker")

# Each of stdout and stderr, counted JSON-encoded (escapes included, so a stream of control
# characters or emoji cannot grow past it when sent): the whole result stays well under the
# tracker's limit of 512 KiB per stored JSON value.
MAX_OUTPUT_CHARS = 200_000
_CUT_MARKER_ROOM = 64  # "\n[... N more characters cut]", encoded
IDLE_RECHECK_SECONDS = 30.0  # safety net in case the event stream is down
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
# A Retry-After is honoured up to this; a longer one (a misconfigured proxy) is not waited out.
RETRY_AFTER_MAX_SECONDS = 60.0
EVENTS_RECONNECT_SECONDS = 2.0


class Refused(Exception):
    """The tracker refused a request in a way that repeating it cannot fix (a 4xx other than 429)."""

    def __init__(self, resp: httpx.Response) -> None:
        self.status = resp.status_code
        code, detail = _problem(resp)
        if self.key_refused:
            why = "the key is wrong or revoked" if self.status == 401 else "the worker needs a key with role write"
            message = (
                f"the tracker refused the key ({self.status} {code}: {detail}); check TASK_TRACKING_API_KEY: {why}"
            )
        else:
            message = f"{resp.request.method} {resp.request.url.path} -> {self.status} {code}: {detail}"
        super().__init__(message)

    @property
    def key_refused(self) -> bool:
        return self.status in (401, 403)


@dataclass
class Worker:
    base_url: str
    api_key: str
    task_type: str
    project: str
    name: str
    command: list[str]
    lease_seconds: int = 60
    transport: httpx.BaseTransport | None = None  # tests put a fake tracker here
    stopping: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _child: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
            transport=self.transport,
        )

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        threading.Thread(target=self._listen, daemon=True, name="worker-events").start()
        log.info("worker %s waiting for %s tasks in project %s", self.name, self.task_type, self.project)
        try:
            while not self.stopping.is_set():
                self._wake.clear()
                task = self._claim()
                if task is None:
                    self._wake.wait(IDLE_RECHECK_SECONDS)
                    continue
                self._work(task)
        except Refused as exc:
            print(f"tracker worker: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self.stopping.set()  # ends the event stream's thread too
            self.http.close()
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Set the events from another thread: the handler runs in the main thread, which may hold
        # an event's lock at that very moment (inside Event.wait), and Event.set would deadlock on it.
        threading.Thread(target=self._stop, name="worker-stop", daemon=True).start()

    def _stop(self) -> None:
        self.stopping.set()
        self._wake.set()
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()

    def _claim(self) -> dict[str, Any] | None:
        """The next task, or None when there is none or the worker is stopping."""
        body = {
            "project": self.project,
            "agent": self.name,
            "type": self.task_type,
            "lease_seconds": self.lease_seconds,
        }
        # One key for this claim and its repeats: a claim that was applied but whose answer got
        # lost returns the same task again, instead of leaving it taken until its lease lapses.
        headers = {"Idempotency-Key": f"worker-{self.name}-claim-{uuid.uuid4().hex}"}
        resp = self._send("claim", lambda: self.http.post("/tasks/next", json=body, headers=headers))
        return None if resp is None else resp.json()["task"]

    def _send(self, what: str, request: Callable[[], httpx.Response]) -> httpx.Response | None:
        """The first answer below 400; None when the worker stops before one arrives.

        Connection errors, timeouts, 429 and 5xx are a tracker or database restarting, or a
        conflict the tracker asks to retry: wait and send again. Other 4xx raise Refused.
        """
        backoff = BACKOFF_FIRST_SECONDS
        while True:
            try:
                resp = request()
            except httpx.TransportError as exc:  # refused, reset, timed out, cut mid-answer
                reason, wait = str(exc) or type(exc).__name__, backoff
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code != 429 and resp.status_code < 500:
                    raise Refused(resp)
                code, detail = _problem(resp)
                reason, wait = f"{resp.status_code} {code}: {detail}", max(backoff, _retry_after(resp))
            if self.stopping.is_set():
                return None
            log.warning("%s failed (%s); retrying in %.1f s", what, reason, wait)
            if self.stopping.wait(wait):  # SIGTERM ends the wait at once
                return None
            backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

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
        """Store the outcome, repeating through tracker restarts so a finished task's result is kept.

        Once stopping (SIGTERM), one attempt only: the lease lapsing hands the task back anyway.
        """
        body = {"status": status, "result": result, "completion_notes": notes, "agent": self.name}
        headers = {"Idempotency-Key": f"worker-{self.name}-{task['id']}-{task['updated_at']}"}
        try:
            resp = self._send(
                f"report of {task['key']}",
                lambda: self.http.put(f"/tasks/{task['id']}/status", json=body, headers=headers),
            )
        except Refused as exc:
            if exc.key_refused:
                raise  # no later request can succeed either
            # The task moved on without this worker (cancelled, or its lease lapsed and another
            # agent took it): nothing to store, and the next task is unaffected.
            log.error("could not report %s as %s: %s", task["key"], status, exc)
            return
        if resp is not None:
            log.info("%s %s", task["key"], status)

    def _listen(self) -> None:
        """Wake the claim loop on every change in the project (the tracker's SSE stream)."""
        while not self.stopping.is_set():
            try:
                with self.http.stream(
                    "GET", "/events", params={"project": self.project}, timeout=httpx.Timeout(10, read=60)
                ) as resp:
                    if resp.status_code != 200:  # a problem body, not a stream: try again later
                        self.stopping.wait(EVENTS_RECONNECT_SECONDS)
                        continue
                    # Changes made while the stream was down were not heard: look for work now.
                    self._wake.set()
                    for line in resp.iter_lines():
                        if line.startswith("event:"):
                            self._wake.set()
                        if self.stopping.is_set():
                            return
            except (OSError, httpx.HTTPError):
                self.stopping.wait(EVENTS_RECONNECT_SECONDS)


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


def _retry_after(resp: httpx.Response) -> float:
    """The answer's Retry-After in seconds (delta or HTTP date), capped; 0 without one."""
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return 0.0
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def _problem(resp: httpx.Response) -> tuple[str, str]:
    """(code, detail) of an RFC 9457 problem answer, or the reason phrase and body of another."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        return str(body.get("code") or resp.reason_phrase), str(body["detail"])
    return resp.reason_phrase, resp.text.strip()[:200] or "(no detail)"
