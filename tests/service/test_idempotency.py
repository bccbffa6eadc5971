"""Idempotency-Key: a repeat replays the first response without doing the work again."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import client_for
from tests.helpers import ok, problem


def test_repeat_replays_first_response(api, project):
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"project": project, "title": "once"}
    first = api.post("/tasks", json=body, headers=headers)
    second = api.post("/tasks", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 1


def test_same_key_other_body_is_422(api, project):
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    ok(api.post("/tasks", json={"project": project, "title": "a"}, headers=headers), 201)
    body = problem(
        api.post("/tasks", json={"project": project, "title": "b"}, headers=headers), 422, "IDEMPOTENCY_KEY_REUSED"
    )
    assert "different request" in body["detail"]
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 1


def test_allocation_and_status_change_replay(api, project):
    key = {"Idempotency-Key": "alloc-1"}
    a = ok(api.post("/ids/next", json={"type": "US", "project_id": project}, headers=key), 201)
    b = ok(api.post("/ids/next", json={"type": "US", "project_id": project}, headers=key), 201)
    assert a == b and a["next_id"] == "US-001"
    assert ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-002"
    task = ok(api.post("/tasks", json={"project": project, "title": "t"}), 201)
    put = {"Idempotency-Key": "status-1"}
    done_resp = api.put(f"/tasks/{task['id']}/status", json={"status": "completed"}, headers=put)
    ok(done_resp)
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "pending"}))
    # The replay returns the first answer, byte for byte, and does not complete the reopened task again.
    again = api.put(f"/tasks/{task['id']}/status", json={"status": "completed"}, headers=put)
    assert again.content == done_resp.content and again.headers["idempotent-replayed"] == "true"
    assert ok(api.get(f"/tasks/{task['id']}"))["status"] == "pending"


def test_failed_request_does_not_burn_the_key(api, project):
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    problem(api.post("/tasks", json={"project": project}, headers=headers), 400, "INVALID_REQUEST")
    problem(api.post("/tasks", json={"project": project}, headers=headers), 400, "INVALID_REQUEST")
    ok(api.post("/tasks", json={"project": project, "title": "fixed"}, headers={"Idempotency-Key": "other"}), 201)


def test_keys_are_per_tenant(tracker_url, make_key, project):
    headers = {"Idempotency-Key": "shared"}
    with (
        client_for(tracker_url, make_key(tenant_name="ia-" + project)) as a,
        client_for(tracker_url, make_key(tenant_name="ib-" + project)) as b,
    ):
        ta = ok(a.post("/tasks", json={"project": project, "title": "a"}, headers=headers), 201)
        tb = ok(b.post("/tasks", json={"project": project, "title": "b"}, headers=headers), 201)
        assert ta["id"] != tb["id"]


def test_concurrent_repeats_create_one_task(tracker_url, api_key, project):
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"project": project, "title": "raced"}

    def send(_: int) -> tuple[int, str]:
        with client_for(tracker_url, api_key) as c:
            resp = c.post("/tasks", json=body, headers=headers)
            return resp.status_code, resp.json()["id"]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(16)))
    assert {status for status, _ in results} == {201}
    assert len({task_id for _, task_id in results}) == 1
    with client_for(tracker_url, api_key) as c:
        assert ok(c.get("/tasks", params={"project": project}))["total"] == 1


def _sixteen_repeats_answer_alike(tracker_url: str, api_key: str, method: str, path: str, body: dict) -> None:
    """16 clients race the same request with one Idempotency-Key: all answer 200, byte for byte alike."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def send(_: int) -> tuple[int, bytes]:
        with client_for(tracker_url, api_key) as c:
            resp = c.request(method, path, json=body, headers=headers)
            return resp.status_code, resp.content

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(16)))
    assert {status for status, _ in results} == {200}
    assert len({content for _, content in results}) == 1, "every repeat answers the first request, byte for byte"


def test_concurrent_repeats_of_a_claim_take_one_task(tracker_url, api_key, project):
    """The claim records its key in its own statement (autocommit): 16 racing repeats of one claim
    take one task and all answer it, while another key's claim takes the next."""
    with client_for(tracker_url, api_key) as c:
        for i in range(3):
            ok(c.post("/tasks", json={"project": project, "title": f"t{i}"}), 201)
    body = {"project": project, "agent": "racer"}
    _sixteen_repeats_answer_alike(tracker_url, api_key, "POST", "/tasks/next", body)
    with client_for(tracker_url, api_key) as c:
        held = ok(c.get("/tasks", params={"project": project, "status": "in_progress"}))
        assert held["total"] == 1
        assert ok(c.post("/tasks/next", json=body))["task"]["id"] != held["tasks"][0]["id"]


def test_concurrent_repeats_of_a_status_change_move_it_once(tracker_url, api_key, project):
    """A status change records its key in its own statement: 16 racing repeats move the task once,
    log it once, and all answer the first change byte for byte."""
    with client_for(tracker_url, api_key) as c:
        task = ok(c.post("/tasks", json={"project": project, "title": "raced"}), 201)
    body = {"status": "in_progress", "agent": "racer"}
    _sixteen_repeats_answer_alike(tracker_url, api_key, "PUT", f"/tasks/{task['id']}/status", body)
    with client_for(tracker_url, api_key) as c:
        log = ok(c.get("/log", params={"project": project, "limit": 100}))["entries"]
        moves = [e for e in log if e["summary"] == f"Task {task['key']}: pending → in_progress"]
        assert len(moves) == 1, log


def test_a_refused_status_change_does_not_burn_its_key(api, project):
    """Refused, it records nothing: the same request with the same key is judged again."""
    task = ok(api.post("/tasks", json={"project": project, "title": "t"}), 201)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"status": "completed", "agent": "a"}
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "cancelled"}))
    problem(api.put(f"/tasks/{task['id']}/status", json=body, headers=headers), 400, "INVALID_TRANSITION")
    ok(api.put(f"/tasks/{task['id']}/status", json={"status": "pending"}))
    done = api.put(f"/tasks/{task['id']}/status", json=body, headers=headers)
    assert ok(done)["updated_task"]["status"] == "completed" and "idempotent-replayed" not in done.headers


def test_a_keyed_status_change_completes_its_parent_once(api, project):
    """The change statement records the key, and the parent it completes completes in the same
    transaction; the repeat answers the child as first changed and changes nothing."""
    parent = ok(api.post("/tasks", json={"project": project, "title": "p", "auto_complete": True}), 201)
    child = ok(api.post("/tasks", json={"project": project, "title": "c", "parent": parent["key"]}), 201)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.put(f"/tasks/{child['key']}/status", json={"status": "completed"}, headers=headers)
    assert ok(first)["updated_task"]["status"] == "completed"
    assert ok(api.get(f"/tasks/{parent['key']}"))["status"] == "completed"
    again = api.put(f"/tasks/{child['key']}/status", json={"status": "completed"}, headers=headers)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    other = api.put(f"/tasks/{child['key']}/status", json={"status": "pending"}, headers=headers)
    problem(other, 422, "IDEMPOTENCY_KEY_REUSED")


def test_overlong_key_is_400(api, project):
    problem(
        api.post("/tasks", json={"project": project, "title": "x"}, headers={"Idempotency-Key": "k" * 300}),
        400,
        "INVALID_REQUEST",
    )
    long_key = {"Idempotency-Key": "k" * 300}  # the claim checks its key the same way
    problem(api.post("/tasks/next", json={"project": project, "agent": "a"}, headers=long_key), 400, "INVALID_REQUEST")
