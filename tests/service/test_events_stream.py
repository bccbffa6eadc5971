"""Live events over SSE: delivered as they commit, per tenant, resumable with Last-Event-ID."""

from __future__ import annotations

import json
import queue
import time

import httpx
import pytest

from tests.conftest import client_for
from tests.helpers import SSEReader, ok, problem


def test_sse_delivers_a_task_change_and_resumes_without_loss(tracker_url, api, api_key, project):
    stream = SSEReader(tracker_url, api_key, {"project": project})
    try:
        started = time.monotonic()
        task = ok(api.post("/tasks", json={"project": project, "title": "watched"}), 201)
        first = stream.next()
        latency = time.monotonic() - started
        print(f"SSE delivery after the write returned: {latency * 1000:.1f} ms")
        assert first["event"] == "task.created"
        data = json.loads(first["data"])
        assert data["id"] == task["id"] and data["project"] == project and data["summary"].endswith("watched")
    finally:
        stream.close()

    # While no one listens, three more changes happen.
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "in_progress"}))
    ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "completed"}))

    resumed = SSEReader(tracker_url, api_key, {"project": project}, last_event_id=first["id"])
    try:
        got = [resumed.next() for _ in range(3)]
        assert [e["event"] for e in got] == ["task.status", "id.allocated", "task.status"]
        with pytest.raises(queue.Empty):
            resumed.next(timeout=0.5)  # nothing twice, nothing extra
    finally:
        resumed.close()


def test_sse_is_per_tenant_and_per_project(tracker_url, api, api_key, make_key, project):
    other_key = make_key(tenant_name="sse-other-" + project)
    mine = SSEReader(tracker_url, api_key, {"project": project})
    theirs = SSEReader(tracker_url, other_key)
    try:
        with httpx.Client(base_url=tracker_url, headers={"X-API-Key": other_key}) as other:
            ok(other.post("/tasks", json={"project": project, "title": "other tenant"}), 201)
        ok(api.post("/tasks", json={"project": project + "-elsewhere", "title": "other project"}), 201)
        ok(api.post("/tasks", json={"project": project, "title": "mine"}), 201)
        assert json.loads(mine.next()["data"])["summary"].endswith("mine")
        assert json.loads(theirs.next()["data"])["summary"].endswith("other tenant")
        with pytest.raises(queue.Empty):
            theirs.next(timeout=0.5)
    finally:
        mine.close()
        theirs.close()


def test_sse_needs_a_key_and_a_valid_resume_token(tracker_url, api_key):
    problem(httpx.get(tracker_url + "/events"), 401, "UNAUTHORIZED")
    # Garbage, numbers past their types' range (the stream used to answer 200 and then die), and a
    # position no transaction has reached yet (the stream would wait on it forever): all refused
    # before the stream starts, so a browser's EventSource stops instead of reconnecting in a loop.
    for position in ("garbage", "99999999999999999999.1", "1.99999999999999999999", "18446744073709551000.1"):
        resp = httpx.get(tracker_url + "/events", headers={"X-API-Key": api_key, "Last-Event-ID": position})
        assert problem(resp, 400, "INVALID_REQUEST")["errors"][0]["field"] == "Last-Event-ID"


def test_a_change_through_one_tracker_process_reaches_a_stream_on_another(spawn_tracker, api_key, project):
    """The NOTIFY goes out after the commit, from the writing process, to every process's LISTEN."""
    reader, writer = spawn_tracker(), spawn_tracker()
    stream = SSEReader(reader.url, api_key, {"project": project})
    try:
        # 5 s is well under the stream's 15 s re-read: the notification, not the timer, delivers.
        with client_for(writer.url, api_key) as c:
            ok(c.post("/ids/next", json={"type": "US", "project_id": project}), 201)  # autocommit route
            assert stream.next(timeout=5)["event"] == "id.allocated"
            ok(c.post("/tasks", json={"project": project, "title": "across"}), 201)  # transaction route
            assert stream.next(timeout=5)["event"] == "task.created"
    finally:
        stream.close()
