"""The client and its transport: retries, backoff, idempotency keys, timeouts, headers, errors."""

from __future__ import annotations

import time

import pytest
import requests
import responses

from mcp_tools.client import TrackerClient
from mcp_tools.config import Config
from mcp_tools.errors import ApiError, InvalidTransition, NotFound, Timeout, TrackerError, Unauthorized, Unavailable

from .bridge_support import API_KEY, URL, problem, task_json
from .conftest import ScriptedTracker

NEXT_ID = {"next_id": "US-028", "number": 28, "type": "US", "project": "p"}
UNAVAILABLE = {
    "title": "Database unavailable",
    "status": 503,
    "detail": "database unavailable",
    "code": "DATABASE_UNAVAILABLE",
}


@pytest.fixture
def local(scripted: ScriptedTracker, sleeps: list[float]) -> TrackerClient:
    """A client of the scripted local tracker (real sockets, sleeps recorded)."""
    return TrackerClient(Config(api_key=API_KEY, base_url=scripted.url, timeout=2.0))


# Retries and backoff (real urllib3 over real sockets)


def test_retries_a_503_then_succeeds_with_exponential_backoff(
    local: TrackerClient, scripted: ScriptedTracker, sleeps: list[float]
) -> None:
    scripted.reply(503, UNAVAILABLE)
    scripted.reply(503, UNAVAILABLE)
    scripted.reply(200, {"task": None})

    assert local.next_task("p").task is None
    assert len(scripted.seen) == 3
    assert sleeps == [0.1, 0.2]


def test_gives_up_after_three_retries_and_reports_the_last_status(
    local: TrackerClient, scripted: ScriptedTracker, sleeps: list[float]
) -> None:
    for _ in range(5):
        scripted.reply(503, UNAVAILABLE)

    with pytest.raises(ApiError) as failure:
        local.next_task("p")

    assert str(failure.value) == "Task Tracking API error: 503 - database unavailable"
    assert len(scripted.seen) == 4  # the first attempt and three retries
    assert sleeps == [0.1, 0.2, 0.4]


@pytest.mark.parametrize("status", [500, 502])
def test_retries_other_transient_statuses(local: TrackerClient, scripted: ScriptedTracker, status: int) -> None:
    scripted.reply(status, {"detail": "transient"})
    scripted.reply(200, {"task": None})

    local.next_task("p")

    assert len(scripted.seen) == 2


def test_does_not_retry_a_gateway_timeout(local: TrackerClient, scripted: ScriptedTracker) -> None:
    """A 504 comes after someone waited the whole timeout: a retry would wait that long again."""
    scripted.reply(504, {"detail": "upstream timed out"})
    scripted.reply(200, {"task": None})

    with pytest.raises(ApiError, match="504 - upstream timed out"):
        local.next_task("p")

    assert len(scripted.seen) == 1


def test_does_not_retry_a_client_error(local: TrackerClient, scripted: ScriptedTracker) -> None:
    scripted.reply(400, {"title": "Invalid request", "detail": "bad status", "code": "INVALID_REQUEST"})

    with pytest.raises(ApiError):
        local.next_task("p")

    assert len(scripted.seen) == 1


def test_429_waits_for_retry_after(local: TrackerClient, scripted: ScriptedTracker, sleeps: list[float]) -> None:
    scripted.reply(429, {"detail": "slow down", "code": "RATE_LIMITED"}, {"Retry-After": "2"})
    scripted.reply(200, {"task": None})

    local.next_task("p")

    assert len(scripted.seen) == 2
    assert sleeps == [2.0]


def test_a_long_retry_after_is_capped(local: TrackerClient, scripted: ScriptedTracker, sleeps: list[float]) -> None:
    scripted.reply(429, {"detail": "slow down", "code": "RATE_LIMITED"}, {"Retry-After": "3600"})
    scripted.reply(200, {"task": None})

    local.next_task("p")

    assert sleeps == [5.0]


def test_a_write_is_retried_with_the_same_idempotency_key(local: TrackerClient, scripted: ScriptedTracker) -> None:
    scripted.reply(503, UNAVAILABLE)
    scripted.reply(502, {"detail": "bad gateway"})
    scripted.reply(201, NEXT_ID)

    assert local.allocate_id("US", "p") == "US-028"

    keys = [seen.headers.get("Idempotency-Key") for seen in scripted.seen]
    assert [seen.method for seen in scripted.seen] == ["POST", "POST", "POST"]
    assert keys[0] and keys == [keys[0]] * 3


def test_each_call_gets_its_own_idempotency_key(local: TrackerClient, scripted: ScriptedTracker) -> None:
    scripted.reply(201, NEXT_ID)
    scripted.reply(201, NEXT_ID)

    local.allocate_id("US", "p")
    local.allocate_id("US", "p")

    first, second = (seen.headers["Idempotency-Key"] for seen in scripted.seen)
    assert first != second


def test_a_post_without_idempotency_key_is_not_retried(
    local: TrackerClient, scripted: ScriptedTracker, sleeps: list[float]
) -> None:
    scripted.reply(503, UNAVAILABLE)
    scripted.reply(201, NEXT_ID)

    resp = local._session.post(f"{scripted.url}/ids/next", json={"type": "US", "project_id": "p"}, timeout=2)

    assert resp.status_code == 503
    assert len(scripted.seen) == 1
    assert "Idempotency-Key" not in scripted.seen[0].headers
    assert sleeps == []


def test_a_post_without_idempotency_key_is_not_retried_under_responses(http: responses.RequestsMock) -> None:
    route = http.post(f"{URL}/tasks/batch", json=UNAVAILABLE, status=503)
    keyed = TrackerClient(Config(api_key=API_KEY))

    resp = keyed._session.post(f"{URL}/tasks/batch", json={"tasks": []}, timeout=1)

    assert resp.status_code == 503
    assert route.call_count == 1


def test_a_keyed_post_is_retried_under_responses(http: responses.RequestsMock, client: TrackerClient) -> None:
    route = http.post(f"{URL}/tasks/batch", json=UNAVAILABLE, status=503)

    with pytest.raises(ApiError):
        client.add_tasks([{"project_id": "p", "title": "t"}])

    assert route.call_count == 4
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert len(keys) == 1


# Connection failures and timeouts


def test_connection_refused_is_retried_with_backoff_then_reported(closed_port_url: str, sleeps: list[float]) -> None:
    tracker = TrackerClient(Config(api_key=API_KEY, base_url=closed_port_url))

    with pytest.raises(Unavailable) as failure:
        tracker.next_task("p")

    assert str(failure.value) == f"Task Tracking microservice unavailable: Connection refused at {closed_port_url}"
    assert sleeps == [0.1, 0.2, 0.4]


def test_a_read_timeout_is_reported_and_not_retried(scripted: ScriptedTracker, sleeps: list[float]) -> None:
    scripted.hang = True
    tracker = TrackerClient(Config(api_key=API_KEY, base_url=scripted.url, timeout=0.3))
    started = time.perf_counter()

    with pytest.raises(Timeout) as failure:
        tracker.next_task("p")

    assert str(failure.value) == "Task Tracking microservice timeout: No response within 0.3 seconds"
    assert time.perf_counter() - started < 2
    assert len(scripted.seen) == 1
    assert sleeps == []


def test_the_default_timeout_is_five_seconds(http: responses.RequestsMock, client: TrackerClient) -> None:
    route = http.get(f"{URL}/tasks/next", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(Timeout) as failure:
        client.next_task("p")

    assert str(failure.value) == "Task Tracking microservice timeout: No response within 5 seconds"
    assert route.calls[0].request.req_kwargs["timeout"] == 5.0


# Headers and connection reuse


def test_every_request_carries_the_bearer_key_and_a_timeout(
    http: responses.RequestsMock, client: TrackerClient
) -> None:
    get = http.get(f"{URL}/tasks/TASK-051", json=task_json())
    post = http.post(f"{URL}/ids/next", json=NEXT_ID, status=201)

    client.get_task("TASK-051")
    client.allocate_id("US", "p")

    for route in (get, post):
        request = route.calls[0].request
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.req_kwargs["timeout"] == 5.0
    assert "Idempotency-Key" not in get.calls[0].request.headers
    assert post.calls[0].request.headers["Idempotency-Key"]


def test_one_pooled_connection_serves_successive_calls(local: TrackerClient, scripted: ScriptedTracker) -> None:
    for _ in range(3):
        scripted.reply(200, {"task": None})

    for _ in range(3):
        local.next_task("p")

    assert len({seen.client_port for seen in scripted.seen}) == 1


def test_path_segments_are_quoted(http: responses.RequestsMock, client: TrackerClient) -> None:
    route = http.get(f"{URL}/tasks/a%2Fb%3Fc", json=task_json())

    client.get_task("a/b?c")

    assert route.call_count == 1


# Error translation


def test_invalid_transition_carries_the_service_detail(http: responses.RequestsMock, client: TrackerClient) -> None:
    detail = "task TASK-051 is completed; reopen it with status=pending first"
    http.put(f"{URL}/tasks/TASK-051/status", **problem(400, "INVALID_TRANSITION", "Invalid status transition", detail))

    with pytest.raises(InvalidTransition) as failure:
        client.set_status("TASK-051", "in_progress")

    assert str(failure.value) == f"Invalid status transition: {detail}"


def test_validation_errors_name_the_fields(http: responses.RequestsMock, client: TrackerClient) -> None:
    errors = [{"field": "tasks.0.priority", "message": "must be one of critical, high, medium, low"}]
    http.post(f"{URL}/tasks/batch", **problem(400, "INVALID_REQUEST", "Invalid request", "invalid body", errors=errors))

    with pytest.raises(ApiError) as failure:
        client.add_tasks([{"project_id": "p", "title": "t", "priority": "urgent"}])

    assert str(failure.value) == (
        "Task Tracking API error: 400 - invalid body "
        "(invalid fields: tasks.0.priority: must be one of critical, high, medium, low)"
    )


def test_an_ambiguous_key_lists_the_candidates(http: responses.RequestsMock, client: TrackerClient) -> None:
    candidates = [{"id": "u1", "project": "a"}, {"id": "u2", "project": "b"}]
    detail = "TASK-1 exists in 2 projects; pass project"
    http.get(
        f"{URL}/tasks/TASK-1", **problem(409, "AMBIGUOUS_KEY", "Ambiguous task key", detail, candidates=candidates)
    )

    with pytest.raises(ApiError) as failure:
        client.get_task("TASK-1")

    assert str(failure.value) == (
        "Task Tracking API error: 409 - TASK-1 names tasks in several projects; pass the UUID of the one you mean "
        "as task_id (candidates: u1 (project a), u2 (project b))"
    )


def test_unauthorized_is_the_spec_message(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.get(f"{URL}/tasks", **problem(401, "UNAUTHORIZED", "Unauthorized", "unknown or revoked API key"))

    with pytest.raises(Unauthorized) as failure:
        client.list_tasks()

    assert str(failure.value) == "Task Tracking API error: 401 - Unauthorized"


def test_task_not_found_names_the_task(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.delete(f"{URL}/tasks/TASK-999", **problem(404, "TASK_NOT_FOUND", "Task not found", "no such task"))

    with pytest.raises(NotFound) as failure:
        client.delete_task("TASK-999")

    assert str(failure.value) == "Task not found: TASK-999"


def test_other_not_found_carries_the_detail(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.get(f"{URL}/handoffs/h1", **problem(404, "NOT_FOUND", "Not found", "handoff h1 not found"))

    with pytest.raises(NotFound) as failure:
        client.get_handoff("h1")

    assert str(failure.value) == "Task Tracking API error: 404 - handoff h1 not found"


def test_a_non_json_error_body_is_quoted(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.get(f"{URL}/tasks", body="upstream exploded", status=418, content_type="text/plain")

    with pytest.raises(ApiError) as failure:
        client.list_tasks()

    assert str(failure.value) == "Task Tracking API error: 418 - upstream exploded"


def test_rate_limit_exhaustion_says_when_to_retry(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.get(
        f"{URL}/tasks",
        **problem(429, "RATE_LIMITED", "Too many requests", "rate limit of 100/min exceeded"),
        headers={"Retry-After": "30"},
    )

    with pytest.raises(ApiError) as failure:
        client.list_tasks()

    assert str(failure.value) == "Task Tracking API error: 429 - rate limit of 100/min exceeded (retry after 30 s)"


def test_an_unexpected_answer_is_reported_not_crashed_on(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.post(f"{URL}/ids/next", json={"id": "US-028"}, status=201)

    with pytest.raises(TrackerError) as failure:
        client.allocate_id("US", "p")

    assert str(failure.value) == (
        "Task Tracking API error: unexpected AllocatedId from the tracker (next_id: Field required); "
        "tracker and tracker-mcp versions may not match"
    )


def test_a_timed_out_write_warns_it_may_have_been_applied(http: responses.RequestsMock, client: TrackerClient) -> None:
    http.post(f"{URL}/tasks/batch", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(Timeout) as failure:
        client.add_tasks([{"project_id": "p", "title": "t"}])

    assert str(failure.value) == (
        "Task Tracking microservice timeout: No response within 5 seconds; "
        "the change may still have been applied, so check before repeating it"
    )


def test_the_session_holds_no_key_and_refuses_cookies(http: responses.RequestsMock, client: TrackerClient) -> None:
    """One session serves every user over HTTP: nothing one request leaves behind may ride on the next."""
    http.get(f"{URL}/tasks/next", json={"task": None}, headers={"Set-Cookie": "tenant=a; Path=/"})

    client.next_task("p")
    client.next_task("p")

    assert "Authorization" not in client._session.headers
    assert len(client._session.cookies) == 0
    assert "Cookie" not in http.calls[1].request.headers
