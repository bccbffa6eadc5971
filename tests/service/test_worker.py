"""The reference worker (`tracker worker`) through tracker restarts, refused keys and huge output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.conftest import client_for, free_port, start_tracker
from tests.helpers import ok, running_worker
from tracker_service.domain.keys.service import revoke_key
from tracker_service.worker import MAX_OUTPUT_CHARS, Refused, Worker, _clip

PROMPT = "Create a Python function to calculate prime numbers"


class Output:
    """The lines a process writes, read in a thread as they come, to wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<exited>")
            self._changed.notify_all()

    def wait_for(self, text: str, seconds: float = 30) -> str:
        """The first line containing text; fails when the process exits or the deadline passes first."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                assert "<exited>" not in self.lines, f"exited before saying {text!r}:\n" + "\n".join(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"no line with {text!r} within {seconds} s:\n" + "\n".join(self.lines)
                self._changed.wait(left)

    def text(self) -> str:
        self._thread.join(10)
        return "\n".join(self.lines)


def wait_for_status(api: httpx.Client, task_id: str, status: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while (task := ok(api.get(f"/tasks/{task_id}")))["status"] != status:
        assert time.monotonic() < deadline, f"task still {task['status']}, not {status}, after {seconds} s"
        time.sleep(0.1)
    return task


def delegate(api: httpx.Client, project: str, prompt: str = PROMPT) -> str:
    body = {"type": "code", "prompt": prompt, "priority": 8, "options": {"project": project}}
    return ok(api.post("/task/delegate", json=body))["task_id"]


@pytest.mark.slow
def test_a_worker_started_before_the_tracker_serves_it_once_it_is_up(pg_url, make_key, project, tmp_path):
    port = free_port()
    key = make_key("write")
    with running_worker(f"http://127.0.0.1:{port}", key, project, "cat") as proc:
        output = Output(proc)
        output.wait_for("claim failed (")  # nothing listens yet: the worker waits and tries again
        tracker = start_tracker({"TRACKER_DATABASE_URL": pg_url}, tmp_path / "tracker.log", port=port)
        try:
            with client_for(tracker.url, key) as api:
                task_id = delegate(api, project)
                task = wait_for_status(api, task_id, "completed")
            assert task["assigned_to"] == "w1" and task["result"]["output"] == PROMPT
        finally:
            tracker.stop()
        assert proc.poll() is None, output.text()


@pytest.mark.slow
def test_a_result_finished_while_the_tracker_restarts_is_reported_when_it_is_back(pg_url, make_key, project, tmp_path):
    port = free_port()
    key = make_key("write")
    finish = tmp_path / "finish"
    # Echo the prompt, then wait (the worker stops it on SIGTERM if the test fails) for the go-ahead.
    command = ("sh", "-c", 'cat; while [ ! -e "$0" ]; do sleep 0.05; done', str(finish))
    tracker = start_tracker({"TRACKER_DATABASE_URL": pg_url}, tmp_path / "tracker.log", port=port)
    try:
        with running_worker(tracker.url, key, project, *command, lease=60) as proc:
            output = Output(proc)
            with client_for(tracker.url, key) as api:
                task_id = delegate(api, project)
                wait_for_status(api, task_id, "in_progress")
            tracker.stop()
            finish.touch()
            output.wait_for("report of TASK-")  # the tracker is down: kept, not lost
            tracker = start_tracker({"TRACKER_DATABASE_URL": pg_url}, tmp_path / "tracker.log", port=port)
            with client_for(tracker.url, key) as api:
                task = wait_for_status(api, task_id, "completed")
            assert task["result"] == {"success": True, "output": PROMPT, "error": None, "exit_code": 0}
            assert proc.poll() is None, output.text()
    finally:
        tracker.stop()


def test_a_worker_with_a_revoked_key_exits_1_with_one_line(tracker_url, db, make_key, project):
    key = make_key("write")
    with db.begin() as conn:
        assert revoke_key(conn, key[:10])
    with running_worker(tracker_url, key, project, "cat") as proc:
        assert proc.wait(30) == 1
        assert proc.stdout is not None
        out = proc.stdout.read()
    last = out.strip().splitlines()[-1]
    assert last.startswith("tracker worker: the tracker refused the key (401 UNAUTHORIZED: "), out
    assert "TASK_TRACKING_API_KEY" in last and "revoked" in last and "Traceback" not in out


class Answers503(BaseHTTPRequestHandler):
    """A tracker whose database is down for long: every request gets 503 with Retry-After: 30."""

    def _answer(self) -> None:
        body = json.dumps({"status": 503, "code": "DATABASE_UNAVAILABLE", "detail": "the database is down"}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Retry-After", "30")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_503_is_waited_out_as_retry_after_says_and_sigterm_ends_the_wait(project):
    with serving(Answers503) as url, running_worker(url, "trk_any", project, "cat") as proc:
        output = Output(proc)
        line = output.wait_for("claim failed (")
        assert "503 DATABASE_UNAVAILABLE: the database is down" in line and "retrying in 30.0 s" in line, line
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - sent < 5, "SIGTERM must end the wait, not sit it out"


class RecordedWaits(threading.Event):
    """A stop event whose waits return at once and are remembered, to see the backoff without sleeping it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0)
        return self.is_set()


Answer = Callable[[httpx.Request], httpx.Response]


def worker_on(answers: list[Answer]) -> tuple[Worker, RecordedWaits, list[httpx.Request]]:
    """A worker whose tracker answers each request with the next of `answers`."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answers[len(sent) - 1](request)

    stopping = RecordedWaits()
    worker = Worker(
        base_url="http://tracker",
        api_key="trk_k",
        task_type="code",
        project="p",
        name="w",
        command=["cat"],
        transport=httpx.MockTransport(handle),
        stopping=stopping,
    )
    return worker, stopping, sent


def refused_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def timed_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def answer(status: int, retry_after: str | None = None, code: str = "", detail: str = "") -> Answer:
    headers = {"Retry-After": retry_after} if retry_after else {}
    if status < 400:
        return lambda request: httpx.Response(status, headers=headers, json={"task": {"key": "TASK-001"}})
    if not detail:  # a proxy's answer, not the tracker's
        return lambda request: httpx.Response(status, headers=headers, text="upstream unavailable")
    return lambda request: httpx.Response(
        status, headers=headers, json={"status": status, "code": code, "detail": detail}
    )


TASK = {"id": "00000000-0000-0000-0000-000000000001", "key": "TASK-001", "updated_at": "t0"}


def test_claims_repeat_with_one_idempotency_key_after_capped_backoff_or_retry_after():
    answers = [refused_connection, timed_out, answer(503), answer(429, retry_after="3")]
    answers += [answer(502)] * 4 + [answer(503, retry_after="600"), answer(200), answer(200)]
    worker, stopping, sent = worker_on(answers)
    assert worker._claim() == {"key": "TASK-001"}
    # Doubling from 0.5 s to 10 s; a longer Retry-After is honoured (up to 60 s), a shorter one is not hurried to.
    assert stopping.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 60.0]
    assert len({r.headers["idempotency-key"] for r in sent}) == 1  # a claim that did arrive is not made twice
    worker._claim()  # the next claim is another request
    assert len({r.headers["idempotency-key"] for r in sent}) == 2


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        (401, "UNAUTHORIZED", "the tracker refused the key (401 UNAUTHORIZED: no good); check TASK_TRACKING_API_KEY"),
        (403, "FORBIDDEN", "the tracker refused the key (403 FORBIDDEN: no good); check TASK_TRACKING_API_KEY"),
        (400, "INVALID_REQUEST", "POST /tasks/next -> 400 INVALID_REQUEST: no good"),
        (404, "NOT_FOUND", "POST /tasks/next -> 404 NOT_FOUND: no good"),
        (409, "CONFLICT", "POST /tasks/next -> 409 CONFLICT: no good"),
    ],
)
def test_claims_stop_on_a_4xx_that_repeating_cannot_fix(status, code, says):
    worker, stopping, sent = worker_on([answer(status, code=code, detail="no good")])
    with pytest.raises(Refused) as refused:
        worker._claim()
    assert str(refused.value).startswith(says) and len(sent) == 1 and stopping.waits == []


def test_a_report_is_repeated_until_stored():
    worker, stopping, sent = worker_on([refused_connection, answer(503, retry_after="1"), answer(200)])
    worker._report(TASK, "completed", {"success": True}, "exit code 0")
    assert len(sent) == 3 and stopping.waits == [0.5, 1.0]
    assert len({r.headers["idempotency-key"] for r in sent}) == 1  # stored once, however often it is sent


def test_a_report_refused_for_the_task_is_logged_for_the_key_is_fatal():
    gone = answer(409, code="CONFLICT", detail="task TASK-001 is cancelled")
    worker, _, sent = worker_on([gone])
    worker._report(TASK, "completed", {"success": True}, "exit code 0")  # logged; the worker goes on
    assert len(sent) == 1
    worker, _, _ = worker_on([answer(401, code="UNAUTHORIZED", detail="invalid or revoked API key")])
    with pytest.raises(Refused):
        worker._report(TASK, "completed", {"success": True}, "exit code 0")


def test_once_stopping_a_report_is_tried_once():
    worker, stopping, sent = worker_on([refused_connection, answer(200)])
    stopping.set()
    worker._report(TASK, "pending", None, "worker stopped; task handed back")
    assert len(sent) == 1 and stopping.waits == []


@pytest.mark.parametrize("char", ["a", '"', "\n", "\x01", "é", "\u2028", "😀"])
def test_output_is_clipped_by_its_encoded_length(char):
    clipped = _clip(char * 300_000)
    assert clipped is not None
    kept, marker = clipped.split("\n[... ")
    assert kept == char * len(kept) and marker == f"{300_000 - len(kept)} more characters cut]"
    assert len(json.dumps(clipped)) <= MAX_OUTPUT_CHARS
    assert len(json.dumps(clipped, ensure_ascii=False).encode()) <= MAX_OUTPUT_CHARS
    # As much as fits is kept: one more character would not.
    assert len(json.dumps(char * (len(kept) + 1))) > MAX_OUTPUT_CHARS - 64
    result = {"success": True, "output": clipped, "error": clipped, "exit_code": 0}
    assert len(json.dumps(result).encode()) <= 512 * 1024
    fits = char * 1000
    assert _clip(fits) == fits and _clip(None) is None


@pytest.mark.slow
def test_output_that_escapes_to_megabytes_is_clipped_and_stored(tracker_url, api, api_key, project):
    # 300k control characters per stream: 1.8 MB each once JSON-escaped, far over the body limit.
    script = "import sys; sys.stdout.write(chr(1) * 300_000); sys.stderr.write(chr(1) * 300_000)"
    with running_worker(tracker_url, api_key, project, sys.executable, "-c", script):
        task_id = delegate(api, project)
        task = wait_for_status(api, task_id, "completed")
    result = task["result"]
    assert len(json.dumps(result).encode()) <= 512 * 1024
    assert result["output"].startswith(chr(1) * 1000) and result["output"].endswith(" more characters cut]")
    assert result["error"].startswith(chr(1) * 1000) and result["exit_code"] == 0


def test_a_signal_while_the_worker_holds_an_events_lock_does_not_deadlock():
    """SIGTERM's handler runs on the main thread wherever it is, even inside Event.wait while it
    holds the event's lock; setting the event right there deadlocked the worker (seen in CI)."""
    worker, _, _ = worker_on([])
    worker.stopping = threading.Event()

    def signal_inside_the_lock() -> None:
        with worker.stopping._cond:  # where Event.wait holds it before it sleeps
            worker._on_signal(signal.SIGTERM, None)

    handler = threading.Thread(target=signal_inside_the_lock, daemon=True)
    handler.start()
    handler.join(5)
    assert not handler.is_alive(), "the signal handler deadlocked on the event's lock"
    assert worker.stopping.wait(5), "the worker was not told to stop"
