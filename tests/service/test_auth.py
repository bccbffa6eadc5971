"""API keys, roles, tenant isolation, rate limits and body limits."""

from __future__ import annotations

import time

import httpx

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.domain.keys.service import Principal, PrincipalCache, revoke_key


def test_health_needs_no_key(tracker_url):
    for path in ("/health", "/mcp/health"):
        assert ok(httpx.get(tracker_url + path))["status"] == "ok"


def test_missing_invalid_and_revoked_keys_are_401(tracker_url, make_key, db, tenant):
    with client_for(tracker_url, None) as anon:
        body = problem(anon.get("/tasks"), 401, "UNAUTHORIZED")
        assert body["title"] == "Unauthorized" and "Bearer" in body["detail"]
        problem(anon.get("/tasks", headers={"Authorization": "Basic abc"}), 401, "UNAUTHORIZED")
        problem(anon.get("/tasks", headers={"X-API-Key": "trk_wrong"}), 401, "UNAUTHORIZED")
        problem(anon.post("/tasks", json={"project": "p", "title": "x"}), 401, "UNAUTHORIZED")
        problem(anon.get("/ids/next", params={"type": "US", "project": "p"}), 401, "UNAUTHORIZED")
    key = make_key("write", name="to-revoke")
    with client_for(tracker_url, key) as c:
        ok(c.get("/tasks"))
        ok(c.get("/tasks"))  # now in the tracker's key cache
        with db.begin() as conn:
            assert revoke_key(conn, "to-revoke", tenant=tenant)
        # The revocation's NOTIFY empties the cache as soon as it arrives (milliseconds), well
        # before the cache's own expiry (60 s): bounded here, then refused for good.
        deadline = time.monotonic() + 5
        while c.get("/tasks").status_code != 401:
            assert time.monotonic() < deadline, "the revoked key was still accepted after 5 s"
            time.sleep(0.01)
        for _ in range(3):
            problem(c.get("/tasks"), 401, "UNAUTHORIZED")


def test_key_cache_stores_only_what_no_change_raced():
    cache = PrincipalCache(ttl=60)
    who = Principal("k1", "t", "name", "write")
    cache.put("h", who, cache.token())
    assert cache.get("h") is None, "nothing is cached while key changes cannot be heard"
    cache.set_listening(True)
    token = cache.token()
    cache.clear()  # a key changed while the lookup ran
    cache.put("h", who, token)
    assert cache.get("h") is None
    cache.put("h", who, cache.token())
    assert cache.get("h") == who
    cache.set_listening(False)
    assert cache.get("h") is None, "losing the LISTEN connection empties the cache"
    expiring = PrincipalCache(ttl=0.01)
    expiring.set_listening(True)
    expiring.put("h", who, expiring.token())
    time.sleep(0.02)
    assert expiring.get("h") is None


def test_x_api_key_header_works(tracker_url, api_key):
    assert ok(httpx.get(tracker_url + "/tasks", headers={"X-API-Key": api_key}))["total"] == 0


def test_read_keys_cannot_write(tracker_url, make_key, project):
    with client_for(tracker_url, make_key("read")) as reader:
        ok(reader.get("/tasks"))
        ok(reader.get("/ids/next", params={"type": "US", "project": project}))
        body = problem(reader.post("/tasks", json={"project": project, "title": "x"}), 403, "FORBIDDEN")
        assert "read" in body["detail"] and "write" in body["detail"]
        problem(reader.post("/ids/next", json={"type": "US", "project": project}), 403, "FORBIDDEN")
        problem(reader.post("/tasks/next", json={"project": project, "agent": "a"}), 403, "FORBIDDEN")
        problem(reader.delete("/tasks/TASK-001"), 403, "FORBIDDEN")


def test_tenants_see_and_change_nothing_of_each_other(tracker_url, make_key, project):
    a = client_for(tracker_url, make_key("write", tenant_name="iso-a-" + project))
    b = client_for(tracker_url, make_key("admin", tenant_name="iso-b-" + project))
    with a, b:
        task = ok(a.post("/tasks", json={"project": project, "title": "secret", "key": "S-1"}), 201)
        res = ok(a.post("/ids/reserve", json={"type": "US", "count": 2, "project_id": project}), 201)
        ok(a.post("/ids/next", json={"type": "BUG", "project_id": project}), 201)
        for ref in (task["id"], "S-1"):
            problem(b.get(f"/tasks/{ref}"), 404, "TASK_NOT_FOUND")
            problem(b.patch(f"/tasks/{ref}", json={"title": "mine"}), 404, "TASK_NOT_FOUND")
            problem(b.put(f"/tasks/{ref}/status", json={"status": "cancelled"}), 404, "TASK_NOT_FOUND")
            problem(b.delete(f"/tasks/{ref}"), 404, "TASK_NOT_FOUND")
        assert ok(b.get("/tasks", params={"project": project}))["total"] == 0
        assert ok(b.get("/tasks"))["total"] == 0
        assert ok(b.get("/tasks/next", params={"project": project}))["task"] is None
        assert ok(b.post("/tasks/next", json={"project": project, "agent": "x"}))["task"] is None
        problem(
            b.post("/tasks", json={"project": project, "title": "t", "depends_on": [task["id"]]}),
            400,
            "INVALID_REQUEST",
        )
        problem(b.post(f"/ids/reservations/{res['reservation_id']}/commit"), 404, "RESERVATION_NOT_FOUND")
        problem(b.post(f"/ids/reservations/{res['reservation_id']}/release"), 404, "RESERVATION_NOT_FOUND")
        assert ok(b.get("/ids/reservations"))["total"] == 0
        assert ok(b.get("/ids"))["counters"] == []
        assert ok(b.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-001"
        ok(b.put(f"/ids/{project}/BUG", json={"last_value": 50}))
        # Same key, same Idempotency-Key: still two tenants' separate tasks.
        ok(b.post("/tasks", json={"project": project, "title": "b's", "key": "S-1"}), 201)
        after = ok(a.get("/tasks/S-1"))
        assert after["title"] == "secret" and after["status"] == "pending"
        assert ok(a.post("/ids/next", json={"type": "BUG", "project_id": project}), 201)["next_id"] == "BUG-002"
        assert ok(a.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-003"


def test_rate_limit_per_key(app_with, make_key):
    limited = app_with(rate_limit_per_minute=3)
    mine, theirs = ({"Authorization": f"Bearer {make_key()}"} for _ in range(2))
    for _ in range(3):
        ok(limited.get("/tasks", headers=mine))
    resp = limited.get("/tasks", headers=mine)
    problem(resp, 429, "RATE_LIMITED")
    assert int(resp.headers["retry-after"]) >= 1
    ok(limited.get("/tasks", headers=theirs))  # the limit is per key


def test_body_limit_is_413(app_with, tracker_url, api_key, project):
    c = app_with(max_body_bytes=2000, key=api_key)
    body = problem(
        c.post("/tasks", json={"project": project, "title": "x", "description": "y" * 3000}),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert "2000" in body["detail"]

    def chunks():  # no Content-Length: the limit holds for streamed bodies too
        yield b'{"project": "p", "description": "'
        for _ in range(10):
            yield b"z" * 500
        yield b'"}'

    problem(c.post("/tasks", content=chunks(), headers={"content-type": "application/json"}), 413, "PAYLOAD_TOO_LARGE")
    ok(c.post("/tasks", json={"project": project, "title": "fits"}), 201)
    with client_for(tracker_url, api_key) as c:  # the default limit is 1 MiB
        big = {"project": project, "title": "x", "description": "y" * (1024 * 1024 + 1)}
        problem(c.post("/tasks", json=big), 413, "PAYLOAD_TOO_LARGE")
        assert ok(c.get("/tasks", params={"project": project}))["total"] == 1


def test_openapi_schema_is_served(tracker_url):
    schema = ok(httpx.get(tracker_url + "/schema/openapi.json"))
    assert "/tasks/next" in schema["paths"] and "/ids/reserve" in schema["paths"]
