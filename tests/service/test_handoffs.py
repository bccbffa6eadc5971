"""Handoffs with spec 000's request bodies: create, list, read, public content, status, threads, expiry."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import text

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.db.engine import create_engine
from tracker_service.sweeper import sweep_once

SPEC_000_HANDOFF = {
    "task": "sprint3-status-report",
    "direction": "cc_to_ai",
    "content": "# Status Report\n\nAll green.",
    "metadata": {"version": "2.2.0", "priority": "high"},
}


def handoff(api, project, **fields):
    return ok(api.post("/mcp/handoffs", json={**SPEC_000_HANDOFF, "project": project, **fields}), 201)


def test_spec_000_create_get_and_public_content(api, tracker_url, project):
    created = handoff(api, project)
    assert (created["status"], created["direction"], created["from_agent"], created["to_agent"]) == (
        "pending",
        "cc_to_ai",
        "cc",
        "claude_ai",
    )
    assert created["public_url"] == f"{tracker_url}/handoffs/{created['id']}/content"
    got = ok(api.get(f"/mcp/handoffs/{created['id']}"))
    assert got["content"] == SPEC_000_HANDOFF["content"] and got["metadata"] == SPEC_000_HANDOFF["metadata"]
    assert got["response_to"] is None and got["created_at"] and got["updated_at"]
    for path in (f"/handoffs/{created['id']}/content", f"/mcp/handoffs/{created['id']}/content"):
        public = httpx.get(tracker_url + path)  # no key
        assert public.status_code == 200 and public.text == SPEC_000_HANDOFF["content"]
        assert public.headers["content-type"].startswith("text/markdown")
        assert public.headers["x-robots-tag"] == "noindex"


def test_public_content_404s_say_nothing(tracker_url):
    for ref in (str(uuid.uuid4()), "not-a-uuid"):
        resp = httpx.get(f"{tracker_url}/handoffs/{ref}/content")
        body = problem(resp, 404, "HANDOFF_NOT_FOUND")
        assert "tenant" not in body["detail"]


def test_list_filters_and_summaries(api, project):
    a = handoff(api, project, task="one")
    handoff(api, project, task="two", direction="ai_to_cc")
    handoff(api, project, task="three", from_agent="codex", to_agent="reviewer", direction=None)
    ok(api.patch(f"/handoffs/{a['id']}", json={"status": "read"}))
    page = ok(api.get("/mcp/handoffs", params={"project": project, "limit": 2}))
    assert page["total"] == 3 and page["has_more"] is True
    assert [h["task"] for h in page["handoffs"]] == ["three", "two"]  # newest first
    first = page["handoffs"][1]
    assert "content" not in first and first["summary"] == "Status Report" and first["size"] > 0
    spec = ok(api.get("/handoffs", params={"project": project, "status": "pending", "direction": "ai_to_cc"}))
    assert [h["task"] for h in spec["handoffs"]] == ["two"]
    assert (
        ok(api.get("/handoffs", params={"project": project, "to_agent": "reviewer"}))["handoffs"][0]["direction"]
        is None
    )
    assert ok(api.get("/handoffs", params={"project": project, "status": "read"}))["total"] == 1
    since = ok(api.get("/handoffs", params={"project": project, "since": "2999-01-01T00:00:00Z"}))
    assert since["total"] == 0
    problem(api.get("/handoffs", params={"direction": "sideways"}), 400, "INVALID_REQUEST")


def test_status_moves_forward_only(api, project):
    h = handoff(api, project)
    assert ok(api.patch(f"/mcp/handoffs/{h['id']}", json={"status": "processed"}))["status"] == "processed"
    assert ok(api.patch(f"/handoffs/{h['id']}", json={"status": "processed"}))["status"] == "processed"
    body = problem(api.patch(f"/handoffs/{h['id']}", json={"status": "read"}), 400, "INVALID_TRANSITION")
    assert body["current_status"] == "processed" and "archived" in body["detail"]
    problem(api.patch(f"/handoffs/{h['id']}", json={"status": "done"}), 400, "INVALID_REQUEST")
    assert ok(api.patch(f"/handoffs/{h['id']}", json={"status": "archived"}))["status"] == "archived"


def test_reply_thread_oldest_first(api, project):
    root = handoff(api, project, task="question")
    reply = handoff(api, project, task="answer", direction="ai_to_cc", response_to=root["id"])
    again = handoff(api, project, task="follow-up", response_to=reply["id"])
    side = handoff(api, project, task="aside", direction="ai_to_cc", response_to=root["id"])
    handoff(api, project, task="unrelated")
    for member in (root, reply, again, side):
        thread = ok(api.get(f"/handoffs/{member['id']}/thread"))["handoffs"]
        assert [h["task"] for h in thread] == ["question", "answer", "follow-up", "aside"]
    assert thread[1]["content"] and thread[1]["response_to"] == root["id"]
    problem(api.get(f"/handoffs/{uuid.uuid4()}/thread"), 404, "HANDOFF_NOT_FOUND")


def test_validation(api, project):
    base = {"project": project, "task": "t", "content": "x"}
    problem(api.post("/handoffs", json=base), 400, "INVALID_REQUEST")  # no agents
    problem(api.post("/handoffs", json={**base, "direction": "up"}), 400, "INVALID_REQUEST")
    problem(api.post("/handoffs", json={**base, "direction": "cc_to_ai", "to_agent": "bob"}), 400, "INVALID_REQUEST")
    problem(api.post("/handoffs", json={**base, "direction": "cc_to_ai", "content": ""}), 400, "INVALID_REQUEST")
    body = problem(
        api.post("/handoffs", json={**base, "direction": "cc_to_ai", "response_to": str(uuid.uuid4())}),
        400,
        "INVALID_REQUEST",
    )
    assert "response_to" in body["detail"]
    problem(api.get("/handoffs/not-a-uuid"), 400, "INVALID_REQUEST")
    assert ok(api.get("/handoffs", params={"project": project}))["total"] == 0


def test_tenants_cannot_read_each_others_handoffs(tracker_url, make_key, project):
    with (
        client_for(tracker_url, make_key(tenant_name="ha-" + project)) as a,
        client_for(tracker_url, make_key(tenant_name="hb-" + project)) as b,
    ):
        h = handoff(a, project)
        problem(b.get(f"/handoffs/{h['id']}"), 404, "HANDOFF_NOT_FOUND")
        problem(b.get(f"/handoffs/{h['id']}/thread"), 404, "HANDOFF_NOT_FOUND")
        problem(b.patch(f"/handoffs/{h['id']}", json={"status": "archived"}), 404, "HANDOFF_NOT_FOUND")
        problem(
            b.post("/handoffs", json={**SPEC_000_HANDOFF, "project": project, "response_to": h["id"]}),
            400,
            "INVALID_REQUEST",
        )
        assert ok(b.get("/handoffs"))["total"] == 0
        assert ok(a.get(f"/handoffs/{h['id']}"))["status"] == "pending"


def test_expired_handoffs_are_archived_and_logged(api, db, pg_url, tracker_url, project):
    h = handoff(api, project, expires_in_seconds=3600)
    assert h["expires_at"]
    with db.begin() as conn:
        conn.execute(
            text("UPDATE handoffs SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": h["id"]}
        )
    # Expired content is gone at once, before any sweep.
    problem(httpx.get(f"{tracker_url}/handoffs/{h['id']}/content"), 404, "HANDOFF_NOT_FOUND")

    async def sweep() -> int:
        engine = create_engine(pg_url)
        try:
            return await sweep_once(engine)
        finally:
            await engine.dispose()

    # The running tracker's own sweep (every 5 s) may have got there first; either way, once.
    asyncio.run(sweep())
    assert ok(api.get(f"/handoffs/{h['id']}"))["status"] == "archived"
    log = ok(api.get("/log", params={"project": project, "type": "handoff"}))["entries"]
    assert [e["event"] for e in log] == ["handoff.expired", "handoff.created"]
    assert log[0]["actor"] == "tracker" and log[0]["id"] == h["id"]


def test_public_content_can_be_turned_off(app_with, api_key, project):
    closed = app_with(public_content=False, key=api_key)
    h = handoff(closed, project)
    assert h["public_url"] is None
    problem(closed.get(f"/handoffs/{h['id']}/content", headers={"Authorization": ""}), 404, "HANDOFF_NOT_FOUND")


def test_related_handoff_on_tasks(api, project):
    h = handoff(api, project)
    task = ok(
        api.post("/mcp/tasks", json={"project": project, "title": "Fix BUG-010", "related_handoff_id": h["id"]}), 201
    )
    assert task["related_handoff_id"] == h["id"]


def test_related_handoff_must_be_the_tenants_own(api, tracker_url, make_key, project):
    problem(
        api.post("/tasks", json={"project": project, "title": "x", "related_handoff_id": str(uuid.uuid4())}),
        400,
        "INVALID_REQUEST",
    )
    with client_for(tracker_url, make_key(tenant_name="rh-" + project)) as other:
        theirs = handoff(other, project)
    body = problem(
        api.post("/tasks", json={"project": project, "title": "x", "related_handoff_id": theirs["id"]}),
        400,
        "INVALID_REQUEST",
    )
    assert body["errors"][0]["field"] == "related_handoff_id"
    task = ok(api.post("/tasks", json={"project": project, "title": "x"}), 201)
    problem(api.patch(f"/tasks/{task['id']}", json={"related_handoff_id": theirs["id"]}), 400, "INVALID_REQUEST")
    mine = handoff(api, project)
    assert (
        ok(api.patch(f"/tasks/{task['id']}", json={"related_handoff_id": mine["id"]}))["related_handoff_id"]
        == mine["id"]
    )
