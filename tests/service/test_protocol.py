"""HTTP details: headers, challenges, failed-key limits, log lines, and what spec 004 clients read.

Settings are tried in process (`create_app(Settings(...))` with Litestar's test client), not by
starting a tracker for each.
"""

from __future__ import annotations

import io
import logging
import uuid

from tests.helpers import ok, problem
from tracker_service.logs import TextFormatter


def test_public_text_has_one_charset_and_nosniff(api, tracker_url):
    import httpx

    handoff = ok(
        api.post("/handoffs", json={"project": "p", "task": "t", "direction": "cc_to_ai", "content": "# hi"}), 201
    )
    content = httpx.get(f"{tracker_url}/handoffs/{handoff['id']}/content")
    assert content.headers["content-type"] == "text/markdown; charset=utf-8"
    assert content.headers["x-content-type-options"] == "nosniff"
    metrics = httpx.get(f"{tracker_url}/metrics")
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert metrics.headers["x-content-type-options"] == "nosniff"
    assert api.get("/tasks").headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{tracker_url}/tasks").headers["x-content-type-options"] == "nosniff"
    # A handler's error passes the request log too: the header once (httpx joins repeats with ", ").
    missing = api.get("/tasks/NOPE-404")
    assert missing.status_code == 404 and missing.headers["x-content-type-options"] == "nosniff"
    assert len(missing.headers.get_list("x-request-id")) == 1


def test_401_says_how_to_authenticate(tracker_url):
    import httpx

    missing = httpx.get(f"{tracker_url}/tasks")
    problem(missing, 401, "UNAUTHORIZED")
    assert missing.headers["www-authenticate"] == 'Bearer realm="tracker"'
    wrong = httpx.get(f"{tracker_url}/tasks", headers={"Authorization": "Bearer trk_wrong"})
    problem(wrong, 401, "UNAUTHORIZED")
    assert wrong.headers["www-authenticate"] == 'Bearer realm="tracker", error="invalid_token"'


def test_failed_key_checks_are_limited_per_address(app_with, make_key):
    import time

    client = app_with(auth_failures_per_minute=5)
    good, unseen = make_key("write"), make_key("write")
    deadline = time.monotonic() + 10
    # Until this process holds the good key (each key creation's notification empties the cache).
    while not client.app.state.hub.keys.knows(good):
        assert time.monotonic() < deadline, "the key was never cached"
        ok(client.get("/tasks", headers={"Authorization": f"Bearer {good}"}))
        time.sleep(0.05)
    for _ in range(5):
        problem(client.get("/tasks", headers={"Authorization": "Bearer trk_guess"}), 401, "UNAUTHORIZED")
    limited = client.get("/tasks", headers={"Authorization": "Bearer trk_guess"})
    assert int(problem(limited, 429, "RATE_LIMITED")["status"]) == 429 and int(limited.headers["retry-after"]) >= 1
    # While limited, an address learns nothing about keys it has not shown to be good: even a valid
    # key not seen before waits; a key already checked goes on working.
    problem(client.get("/tasks", headers={"Authorization": f"Bearer {unseen}"}), 429, "RATE_LIMITED")
    ok(client.get("/tasks", headers={"Authorization": f"Bearer {good}"}))


def test_control_characters_never_reach_the_text_log_raw(app_with):
    client = app_with()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter())
    access = logging.getLogger("tracker.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        client.get("/handoffs/x%0aFORGED%0d%1b[31m/content")
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "x\\nFORGED\\r\\x1b[31m" in lines[0]


def test_unknown_log_types_are_refused(api):
    body = problem(api.get("/log", params={"type": "bogus"}), 400, "INVALID_REQUEST")
    assert body["errors"][0]["field"] == "type" and "task.created" in body["detail"]
    ok(api.get("/log", params={"type": "task"}))
    ok(api.get("/log", params={"type": "task.created"}))


def test_no_task_comes_with_a_hint(api, project):
    typo = ok(api.get("/tasks/next", params={"project": f"{project}-typo"}))
    assert typo["task"] is None and "has no tasks" in typo["hint"]
    ok(api.post("/tasks", json={"project": project, "title": "blocked on a", "key": "B", "depends_on": []}), 201)
    ok(api.post("/tasks", json={"project": project, "title": "a", "key": "A", "assigned_to": "someone-else"}), 201)
    ok(api.patch("/tasks/B", params={"project": project}, json={"depends_on": ["A"]}))
    claim = ok(api.post("/tasks/next", json={"project": project, "agent": "me"}))
    assert claim["task"] is None and "2 pending" in claim["hint"] and "dependencies" in claim["hint"]
    typo = ok(api.post("/tasks/next", json={"project": f"{project}-typo", "agent": "me"}))
    assert project in typo["hint"]


def test_spec_004_fields(api, project, tracker_url):
    import httpx

    ok(api.post("/tasks", json={"project": project, "title": "x"}), 201)
    item = ok(api.get("/tasks", params={"project": project, "status": "pending", "limit": 5}))["tasks"][0]
    assert item["task_id"] == item["key"] and item["created_at"]
    health = ok(httpx.get(f"{tracker_url}/health"))
    assert health["timestamp"].endswith("+00:00")


def test_a_failure_after_an_autocommitted_statement_does_not_claim_nothing_changed(app_with, make_key, monkeypatch):
    from tracker_service.domain.tasks import schemas

    client = app_with()
    headers = {"Authorization": f"Bearer {make_key('write')}"}
    project = f"p-{uuid.uuid4().hex[:6]}"
    ok(client.post("/tasks", json={"project": project, "title": "x"}, headers=headers), 201)

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("serializing failed")

    monkeypatch.setattr(schemas.NextTaskOut, "model_dump", broken)  # what Litestar's encoder calls
    resp = client.post("/tasks/next", json={"project": project, "agent": "a"}, headers=headers)
    monkeypatch.undo()
    assert "may have been stored" in problem(resp, 500, "SERVER_ERROR")["detail"]
    assert ok(client.get("/tasks", params={"project": project, "status": "in_progress"}, headers=headers))["total"] == 1
