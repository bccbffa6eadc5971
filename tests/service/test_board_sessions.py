"""The board's sign-in: a session in PostgreSQL behind an HttpOnly, SameSite=Strict cookie, CSRF on
every write made with it, the key's tenant and role, and an end at once when the key is revoked."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import client_for
from tests.helpers import ok, problem
from tests.service.test_revocation import REVOCATION_BOUND_SECONDS, OpenStream, revoke
from tracker_service.domain.keys.sessions import SESSION_COOKIE


def sign_in(base_url: str, key: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/board/signin", data={"key": key}, headers={"Origin": base_url, **headers}, timeout=10
    )


@contextmanager
def board_client(base_url: str, key: str) -> Iterator[tuple[httpx.Client, str]]:
    """A browser-like client signed in with `key`, and the CSRF token its pages carry."""
    resp = sign_in(base_url, key)
    assert resp.status_code == 303, resp.text
    with httpx.Client(base_url=base_url, cookies={SESSION_COOKIE: resp.cookies[SESSION_COOKIE]}, timeout=10) as client:
        page = client.get("/board")
        assert page.status_code == 200, page.text
        match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert match, page.text[:500]
        yield client, match.group(1)


@pytest.fixture
def board(tracker_url: str, api_key: str) -> Iterator[tuple[httpx.Client, str]]:
    with board_client(tracker_url, api_key) as signed_in:
        yield signed_in


def test_sign_in_sets_a_strict_http_only_cookie_and_shows_the_board(tracker_url, api_key):
    resp = sign_in(tracker_url, api_key)
    assert resp.status_code == 303 and resp.headers["location"] == "/board"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "secure" not in lowered.replace("samesite", "")  # plain http: a Secure cookie would not be sent back
    assert api_key not in cookie  # the key itself never leaves in the cookie


def test_the_cookie_is_secure_behind_https(tracker_url, api_key):
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its default --forwarded-allow-ips).
    resp = sign_in(tracker_url, api_key, **{"X-Forwarded-Proto": "https"})
    assert resp.status_code == 303
    assert "; secure" in resp.headers["set-cookie"].lower()


def test_a_wrong_key_or_a_foreign_origin_gets_the_form_again(tracker_url, api_key):
    wrong = sign_in(tracker_url, "trk_not-a-key")
    assert wrong.status_code == 401 and "invalid or revoked key" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    foreign = httpx.post(
        f"{tracker_url}/board/signin", data={"key": api_key}, headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert foreign.status_code == 403 and SESSION_COOKIE not in foreign.cookies


def test_pages_without_a_session_send_people_to_sign_in(tracker_url):
    for path in ("/board", "/board/projects/x", "/board/review", "/board/tasks/TASK-001"):
        resp = httpx.get(f"{tracker_url}{path}", timeout=10)
        assert resp.status_code == 303 and resp.headers["location"] == "/board/signin", path
    ended = httpx.get(f"{tracker_url}/board", cookies={SESSION_COOKIE: "not-a-session"}, timeout=10)
    assert ended.status_code == 303


def test_board_pages_carry_a_strict_content_security_policy(board):
    client, _ = board
    resp = client.get("/board")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"
    assert "<script>" not in resp.text and " on" + "click=" not in resp.text  # no inline script at all


def test_writes_with_the_cookie_need_the_csrf_token(board, project):
    client, csrf = board
    body = {"project": project, "title": "made on the board"}
    refused = client.post("/tasks", json=body)
    assert problem(refused, 403, "CSRF_TOKEN_INVALID")
    problem(client.post("/tasks", json=body, headers={"X-CSRF-Token": "wrong"}), 403, "CSRF_TOKEN_INVALID")
    made = ok(client.post("/tasks", json=body, headers={"X-CSRF-Token": csrf}), 201)
    # Reads need no token; the task is the key's tenant's.
    assert ok(client.get("/tasks", params={"project": project}))["tasks"][0]["key"] == made["key"]


def test_a_session_has_its_keys_tenant_and_role(tracker_url, make_key, project):
    other_tenant_key = make_key("write", tenant_name="someone-else")
    with client_for(tracker_url, other_tenant_key) as other:
        hidden = ok(other.post("/tasks", json={"project": project, "title": "not yours"}), 201)
    with board_client(tracker_url, make_key("read")) as (reader, csrf):
        assert ok(reader.get("/tasks", params={"project": project}))["total"] == 0
        assert reader.get(f"/board/tasks/{hidden['id']}").status_code == 404
        problem(
            reader.post("/tasks", json={"project": project, "title": "x"}, headers={"X-CSRF-Token": csrf}),
            403,
            "FORBIDDEN",
        )
        page = reader.get(f"/board/projects/{project}")
        assert "not yours" not in page.text and "New task" not in page.text  # no write forms for a reader


def test_an_explicit_key_wins_over_the_cookie(tracker_url, board, make_key):
    client, _ = board
    other = make_key("read", tenant_name="tenant-of-the-header")
    who = ok(client.get("/whoami", headers={"Authorization": f"Bearer {other}"}))
    assert who["tenant"] == "tenant-of-the-header"


def test_sign_out_ends_the_session(board):
    client, csrf = board
    problem(client.post("/board/signout"), 403, "CSRF_TOKEN_INVALID")
    resp = client.post("/board/signout", headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 204 and SESSION_COOKIE in resp.headers["set-cookie"]
    assert client.get("/board").status_code == 303
    problem(client.get("/tasks"), 401, "UNAUTHORIZED")


def test_revoking_the_key_ends_its_sessions_and_their_live_streams_at_once(tracker_url, make_key, db, tenant):
    key = make_key("write", name="board-person")
    with board_client(tracker_url, key) as (client, _):
        # The board's live updates: /events read with the session cookie, as EventSource does.
        events = OpenStream(tracker_url, None, "/events", client=client)
        revoked_at = revoke(db, "board-person", tenant)
        ended = events.wait_end(REVOCATION_BOUND_SECONDS + 2)
        assert ended is not None and ended - revoked_at < REVOCATION_BOUND_SECONDS
        assert "event: revoked" in events.lines
        assert client.get("/board").status_code == 303
        problem(client.get("/tasks"), 401, "UNAUTHORIZED")


def _column(html: str, status: str) -> tuple[int, list[str]]:
    """A board column's total and card keys, read from the page."""
    section = html.split(f'<section class="column" data-status="{status}">', 1)[1].split("</section>", 1)[0]
    total = int(re.search(r'<span class="count">(\d+)</span>', section).group(1))  # type: ignore[union-attr]
    return total, re.findall(r'<article class="card[^"]*" data-key="([^"]+)"', section)


def test_a_filtered_board_shows_what_the_api_lists_column_by_column(board, api, project):
    client, _ = board
    statuses = ["pending", "in_progress", "blocked", "completed"]
    for i in range(60):
        body = {
            "project": project,
            "title": f"{'Parser' if i % 3 else 'Docs'} item {i}",
            "status": statuses[i % 4],
            "assigned_to": f"agent-{i % 2}",
            "tags": ["ui"] if i % 5 else ["api"],
            "priority": ("critical", "high", "medium", "low")[i % 4],
        }
        ok(api.post("/tasks", json=body), 201)
    filters = {"assignee": "agent-1", "tag": "ui", "q": "parSER"}
    for offsets in ({}, {"in_progress_offset": "3", "pending_offset": "20"}):
        html = client.get(f"/board/projects/{project}", params={**filters, **offsets}).text
        for status in statuses:
            offset = int(offsets.get(f"{status}_offset", "0"))
            listed = ok(
                api.get(
                    "/tasks",
                    params={
                        "project": project,
                        "status": status,
                        "assigned_to": "agent-1",
                        "tag": "ui",
                        "q": "parSER",
                        "limit": 20,
                        "offset": offset,
                    },
                )
            )
            assert _column(html, status) == (listed["total"], [t["key"] for t in listed["tasks"]]), status


def test_sign_out_also_ends_the_sessions_open_streams(tracker_url, board):
    client, csrf = board
    events = OpenStream(tracker_url, None, "/events", client=client)
    signed_out_at = time.monotonic()
    assert client.post("/board/signout", headers={"X-CSRF-Token": csrf}).status_code == 204
    ended = events.wait_end(REVOCATION_BOUND_SECONDS + 2)
    assert ended is not None and ended - signed_out_at < REVOCATION_BOUND_SECONDS
    assert "event: revoked" in events.lines


def test_a_filter_repeating_a_value_costs_one_value(board, api, project):
    client, _ = board
    ok(api.post("/tasks", json={"project": project, "title": "only one"}), 201)
    page = client.get(f"/board/projects/{project}", params={"status": ",".join(["pending"] * 2000)})
    assert page.status_code == 200 and page.text.count('<section class="column"') == 1
    assert ok(api.get("/tasks", params={"project": project, "status": "pending,pending"}))["total"] == 1


def test_cookies_of_other_sites_on_the_host_do_not_hide_the_session():
    from tracker_service.domain.keys.sessions import session_token_from

    assert session_token_from('prefs={"theme":"dark"}; tracker_session=abc') == "abc"
    assert session_token_from("a=b c; tracker_session=abc; tracker_session=older") == "abc"
    assert session_token_from("other=1") is None and session_token_from(None) is None


def test_project_names_are_links_that_lead_back_to_the_project(board, api):
    client, _ = board
    project = f"team a/b?{time.monotonic_ns()}"
    ok(api.post("/tasks", json={"project": project, "title": "odd name"}), 201)
    overview = client.get("/board").text
    href = re.search(r'href="(/board/projects/team%20a%2Fb%3F\d+)"', overview)
    assert href, "the project's link is not percent-encoded"
    page = client.get(href.group(1))
    assert page.status_code == 200 and "odd name" in page.text


def test_one_value_filters_refuse_several(board):
    client, _ = board
    page = client.get("/board/ids", params={"status": "active,lapsed"})
    assert page.status_code == 400 and "give one value" in page.text


def test_priority_and_direction_filters_take_several_values(api, project):
    for priority in ("high", "low", "medium"):
        ok(api.post("/tasks", json={"project": project, "title": priority, "priority": priority}), 201)
    listed = ok(api.get("/tasks", params={"project": project, "priority": "high,low"}))
    assert sorted(t["title"] for t in listed["tasks"]) == ["high", "low"] and listed["total"] == 2
    for direction in ("cc_to_ai", "ai_to_cc"):
        ok(api.post("/handoffs", json={"project": project, "task": "t", "direction": direction, "content": "x"}), 201)
    both = ok(api.get("/handoffs", params={"project": project, "direction": "cc_to_ai,ai_to_cc"}))
    assert both["total"] == 2


def test_event_streams_per_key_are_capped(spawn_tracker, api_key):
    from websockets.sync.client import connect

    capped = spawn_tracker(TRACKER_STREAMS_PER_KEY="1")
    first = OpenStream(capped.url, api_key, "/events")
    problem(client_for(capped.url, api_key).get("/events"), 429, "RATE_LIMITED")
    ws_url = capped.url.replace("http://", "ws://") + "/ws"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {api_key}"}) as ws:
        assert '"RATE_LIMITED"' in ws.recv(timeout=10)
    assert first.ended_at is None
