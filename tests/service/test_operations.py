"""Operations: Prometheus metrics, request ids, JSON logs."""

from __future__ import annotations

import json
import time

import httpx

from tests.conftest import client_for
from tests.helpers import ok, problem


def metric_lines(url: str) -> list[str]:
    resp = httpx.get(url + "/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return [line for line in resp.text.splitlines() if line and not line.startswith("#")]


def value(lines: list[str], prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def test_metrics_count_requests_claims_ids_and_pool(tracker_url, api, project):
    before = metric_lines(tracker_url)
    ok(api.post("/tasks", json={"project": project, "title": "measured"}), 201)
    ok(api.post("/tasks/next", json={"project": project, "agent": "m"}))
    ok(api.post("/tasks/next", json={"project": project, "agent": "m"}))
    ok(api.post("/ids/reserve", json={"type": "US", "count": 3, "project_id": project}), 201)
    problem(api.get("/tasks/NOPE-1"), 404, "TASK_NOT_FOUND")
    after = metric_lines(tracker_url)
    assert (
        value(after, 'tracker_claims_total{outcome="claimed"}')
        - value(before, 'tracker_claims_total{outcome="claimed"}')
        == 1
    )
    assert (
        value(after, 'tracker_claims_total{outcome="empty"}') - value(before, 'tracker_claims_total{outcome="empty"}')
        == 1
    )
    assert (
        value(after, 'tracker_ids_allocated_total{how="reserved"}')
        - value(before, 'tracker_ids_allocated_total{how="reserved"}')
        == 3
    )
    assert any(line.startswith("tracker_db_pool_connections{") for line in after)
    # Requests are labelled by route template and status, never by raw path.
    routes = [line for line in after if line.startswith("tracker_requests_total{")]
    assert any('path="/tasks/{ref}"' in line and 'status_code="404"' in line for line in routes), routes
    assert not any("NOPE-1" in line for line in after)


def test_metrics_can_be_turned_off(app_with):
    assert app_with(metrics=False).get("/metrics").status_code == 404


def test_a_served_app_leaves_what_start_up_made_out_of_garbage_collection(pg_url):
    """`tracker serve` freezes start-up's objects once the app has started (app.served): a full
    collection over them stalled every request for over 100 ms under load."""
    import gc

    from litestar.testing import TestClient

    from tracker_service.app import create_app, served
    from tracker_service.settings import Settings

    app = served(create_app(Settings(database_url=pg_url, sweep_interval_seconds=3600)))
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 10_000, "start-up's objects are frozen once the app has started"
            ok(client.get("/health"))
    finally:
        gc.unfreeze()  # this test process builds many more apps


def test_every_response_carries_a_request_id(tracker_url, api):
    resp = api.get("/tasks", headers={"X-Request-ID": "trace-123"})
    assert resp.headers["x-request-id"] == "trace-123"
    generated = api.get("/tasks").headers["x-request-id"]
    assert len(generated) == 32
    unauthorized = httpx.get(tracker_url + "/tasks", headers={"X-Request-ID": "no-key-1"})
    assert unauthorized.status_code == 401 and unauthorized.headers["x-request-id"] == "no-key-1"
    bogus = api.get("/tasks", headers={"X-Request-ID": "not ok\tid"}).headers["x-request-id"]
    assert bogus != "not ok\tid" and len(bogus) == 32


def test_json_logs_with_request_id(spawn_tracker, api_key, project):
    tracker = spawn_tracker(TRACKER_LOG_FORMAT="json", TRACKER_LOG_LEVEL="info")
    with client_for(tracker.url, api_key) as c:
        ok(c.post("/tasks", json={"project": project, "title": "logged"}, headers={"X-Request-ID": "json-1"}), 201)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in tracker.log.read_text().splitlines() if line.startswith("{")]
        hits = [line for line in lines if line.get("request_id") == "json-1"]
        if hits:
            break
        time.sleep(0.1)
    access = next(line for line in hits if line["logger"] == "tracker.access")
    assert access["status"] == 201 and access["method"] == "POST" and access["path"] == "/tasks"
    assert access["level"] == "info" and access["time"] and access["duration_ms"] >= 0
    assert all(line.startswith("{") for line in tracker.log.read_text().splitlines() if line.strip())
