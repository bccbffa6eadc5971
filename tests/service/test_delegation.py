"""Spec 004's delegation, end to end with the reference worker (`tracker worker -- COMMAND`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ok, problem, running_worker

SPEC_004 = {
    "type": "code",
    "prompt": "Create a Python function to calculate prime numbers",
    "priority": 8,
    "sync": False,
    "files": ["utils.py", "main.py"],
    "options": {"timeout": 120, "model": "gpt-oss:20b"},
}


def delegate(api, project, **fields):
    body = {**SPEC_004, "options": {**SPEC_004["options"], "project": project}, **fields}
    return api.post("/task/delegate", json=body)


def test_async_delegation_queues_a_typed_task(api, project):
    out = ok(delegate(api, project))
    assert out["status"] == "delegated" and out["task_id"]
    status = ok(api.get(f"/task/{out['task_id']}/status"))
    assert (status["status"], status["result"]) == ("pending", None)
    task = ok(api.get(f"/tasks/{out['task_id']}"))
    assert (task["type"], task["priority"], task["project"]) == ("code", "high", project)
    assert task["title"] == SPEC_004["prompt"] and task["inputs"]["files"] == ["utils.py", "main.py"]
    # Workers of another type do not get it; a code worker does.
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "g", "type": "general"}))["task"] is None
    assert (
        ok(api.post("/tasks/next", json={"project": project, "agent": "c", "type": "code"}))["task"]["id"] == task["id"]
    )


def test_priority_mapping_and_default_project(api):
    out = ok(api.post("/task/delegate", json={"type": "general", "prompt": "tidy up", "priority": 2}))
    task = ok(api.get(f"/tasks/{out['task_id']}"))
    assert (task["project"], task["priority"]) == ("delegated", "low")
    for bad in (
        {"type": "poetry", "prompt": "x"},
        {"type": "code", "prompt": ""},
        {"type": "code", "prompt": "x", "priority": 11},
        {"type": "code", "prompt": "x", "options": {"timeout": -1}},
    ):
        body = problem(api.post("/task/delegate", json=bad), 400, "INVALID_REQUEST")
        assert body["detail"]


def test_cancel(api, project):
    task_id = ok(delegate(api, project))["task_id"]
    assert ok(api.delete(f"/task/{task_id}")) == {"task_id": task_id, "status": "cancelled", "result": None}
    assert ok(api.delete(f"/task/{task_id}"))["status"] == "cancelled"
    done = ok(delegate(api, project))["task_id"]
    ok(api.put(f"/tasks/{done}/status", json={"status": "completed"}))
    body = problem(api.delete(f"/task/{done}"), 409, "CONFLICT")
    assert "completed" in body["detail"]
    problem(api.get("/task/00000000-0000-0000-0000-000000000000/status"), 404, "TASK_NOT_FOUND")


def test_sync_timeout_is_a_problem_and_leaves_the_task_queued(api, project):
    resp = delegate(api, project, sync=True, options={"timeout": 1, "project": project})
    body = problem(resp, 504, "TIMEOUT")
    assert body["task_id"] and "did not finish" in body["detail"]
    assert ok(api.get(f"/task/{body['task_id']}/status"))["status"] == "pending"


def test_idempotent_delegation(api, project):
    headers = {"Idempotency-Key": "delegate-once"}
    a = ok(api.post("/task/delegate", json={**SPEC_004, "options": {"project": project}}, headers=headers))
    b = ok(api.post("/task/delegate", json={**SPEC_004, "options": {"project": project}}, headers=headers))
    assert a["task_id"] == b["task_id"]
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 1
    problem(
        api.post("/task/delegate", json={**SPEC_004, "prompt": "other"}, headers=headers), 422, "IDEMPOTENCY_KEY_REUSED"
    )


@pytest.mark.slow
def test_sync_delegation_with_a_real_worker(tracker_url, api, api_key, project):
    with running_worker(tracker_url, api_key, project, "cat"):
        out = ok(delegate(api, project, sync=True))
        assert out["status"] == "completed"
        assert out["result"] == {"success": True, "output": SPEC_004["prompt"], "error": None}
        status = ok(api.get(f"/task/{out['task_id']}/status"))
        assert status["status"] == "completed" and status["result"]["output"] == SPEC_004["prompt"]
        task = ok(api.get(f"/tasks/{out['task_id']}"))
        assert task["assigned_to"] == "w1" and task["result"]["exit_code"] == 0
        # Work queued asynchronously is picked up too (woken by the event stream).
        queued = ok(delegate(api, project, prompt="second"))["task_id"]
        deadline = time.monotonic() + 30
        while ok(api.get(f"/task/{queued}/status"))["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ok(api.get(f"/task/{queued}/status"))["result"]["output"] == "second"


@pytest.mark.slow
def test_failing_command_and_environment(tracker_url, api, api_key, project):
    script = 'echo "files=$TRACKER_TASK_FILES"; echo oops >&2; exit 3'
    with running_worker(tracker_url, api_key, project, "sh", "-c", script):
        out = ok(delegate(api, project, sync=True))
    assert out["status"] == "failed"
    assert out["result"] == {"success": False, "output": 'files=["utils.py", "main.py"]\n', "error": "oops\n"}


@pytest.mark.slow
def test_sigterm_hands_the_task_back(tracker_url, api, api_key, project):
    with running_worker(tracker_url, api_key, project, "sleep", "60") as proc:
        task_id = ok(delegate(api, project))["task_id"]
        deadline = time.monotonic() + 30
        while ok(api.get(f"/tasks/{task_id}"))["status"] != "in_progress" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ok(api.get(f"/tasks/{task_id}"))["assigned_to"] == "w1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    task = ok(api.get(f"/tasks/{task_id}"))
    assert (task["status"], task["assigned_to"], task["lease_expires_at"]) == ("pending", None, None)


def test_worker_needs_a_key_and_a_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TASK_TRACKING_API_KEY"}
    run = subprocess.run(
        [sys.executable, "-m", "tracker_service", "worker", "--type", "code", "--", "cat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "TASK_TRACKING_API_KEY environment variable not set" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "tracker_service", "worker", "--type", "code"],
        env={**env, "TASK_TRACKING_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "after --" in run.stderr
