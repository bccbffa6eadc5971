"""Tenant isolation as a property: whatever two tenants do, nothing of one is visible to or
changed by the other: by id, key, list, log, thread, events or public content."""

from __future__ import annotations

import json
import queue
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import client_for
from tests.helpers import SSEReader, ok

pytestmark = pytest.mark.slow

KEYS = st.sampled_from(["TASK-001", "TASK-002", "X-1", "SHARED"])
OPERATION = st.one_of(
    st.tuples(st.just("task"), st.one_of(st.none(), KEYS)),
    st.tuples(st.just("handoff"), st.booleans()),
    st.tuples(st.just("id"), st.sampled_from(["US", "TASK"])),
    st.tuples(st.just("reserve"), st.integers(1, 3)),
    st.tuples(st.just("claim"), st.none()),
)
# Both tenants use the same project names and keys, so only the tenant separates them.
PLAN = st.lists(st.tuples(st.sampled_from(["a", "b"]), OPERATION), min_size=1, max_size=12)


def apply(client: httpx.Client, project: str, op: tuple, made: dict[str, list]) -> None:  # type: ignore[type-arg]
    kind, arg = op
    if kind == "task":
        body = {"project": project, "title": f"task of {uuid.uuid4().hex[:6]}"}
        if arg:
            body["key"] = arg
        resp = client.post("/tasks", json=body)
        if resp.status_code == 201:
            made["tasks"].append(resp.json())
        else:
            assert resp.json()["code"] == "DUPLICATE_KEY"  # a key reused within one tenant only
    elif kind == "handoff":
        parent = made["handoffs"][-1]["id"] if arg and made["handoffs"] else None
        body = {"project": project, "task": "t", "direction": "cc_to_ai", "content": "# secret", "response_to": parent}
        made["handoffs"].append(ok(client.post("/handoffs", json=body), 201))
    elif kind == "id":
        made["ids"].append(ok(client.post("/ids/next", json={"type": arg, "project_id": project}), 201))
    elif kind == "reserve":
        body = {"type": "US", "count": arg, "project_id": project}
        made["reservations"].append(ok(client.post("/ids/reserve", json=body), 201))
    elif kind == "claim":
        task = ok(client.post("/tasks/next", json={"project": project, "agent": "x"}))["task"]
        if task:
            made["claimed"].append(task)


def assert_invisible(viewer: httpx.Client, owner: dict[str, list], viewer_made: dict[str, list], project: str) -> None:
    mine = {t["id"] for t in viewer_made["tasks"]}
    for task in owner["tasks"]:
        assert viewer.get(f"/tasks/{task['id']}").status_code == 404
        assert viewer.patch(f"/tasks/{task['id']}", json={"notes": "x"}).status_code == 404
        assert viewer.put(f"/tasks/{task['id']}/status", json={"status": "cancelled"}).status_code == 404
        by_key = viewer.get(f"/tasks/{task['key']}")
        assert by_key.status_code == 404 or by_key.json()["id"] in mine
    listed = {t["id"] for t in ok(viewer.get("/tasks", params={"project": project, "limit": 200}))["tasks"]}
    assert listed == mine
    for h in owner["handoffs"]:
        assert viewer.get(f"/handoffs/{h['id']}").status_code == 404
        assert viewer.get(f"/handoffs/{h['id']}/thread").status_code == 404
        assert viewer.patch(f"/handoffs/{h['id']}", json={"status": "archived"}).status_code == 404
    own_handoffs = {h["id"] for h in viewer_made["handoffs"]}
    assert {h["id"] for h in ok(viewer.get("/handoffs", params={"project": project}))["handoffs"]} == own_handoffs
    for thread_of in viewer_made["handoffs"]:
        members = {h["id"] for h in ok(viewer.get(f"/handoffs/{thread_of['id']}/thread"))["handoffs"]}
        assert members <= own_handoffs
    for r in owner["reservations"]:
        assert viewer.post(f"/ids/reservations/{r['reservation_id']}/commit").status_code == 404
    foreign = {t["id"] for t in owner["tasks"]} | {h["id"] for h in owner["handoffs"]}
    for entry in ok(viewer.get("/log", params={"limit": 200}))["entries"]:
        assert entry["id"] not in foreign
    # The viewer's US IDs (allocated and reserved) are its own gapless sequence: the other
    # tenant's allocations in the same project take nothing from it.
    numbers = [i["number"] for i in viewer_made["ids"] if i["type"] == "US"]
    numbers += [int(rid.split("-")[1]) for r in viewer_made["reservations"] for rid in r["reserved_ids"]]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
    database=None,
)
@given(plan=PLAN)
def test_random_operations_of_two_tenants_never_cross(tracker_url, make_key, plan):  # type: ignore[no-untyped-def]
    project = f"iso-{uuid.uuid4().hex[:8]}"
    a = client_for(tracker_url, make_key(tenant_name=f"pa-{project}"))
    b = client_for(tracker_url, make_key(tenant_name=f"pb-{project}"))
    made = {side: {"tasks": [], "handoffs": [], "ids": [], "reservations": [], "claimed": []} for side in "ab"}
    with a, b:
        for side, op in plan:
            apply(a if side == "a" else b, project, op, made[side])
        assert_invisible(b, made["a"], made["b"], project)
        assert_invisible(a, made["b"], made["a"], project)
        # A claim only ever takes the claimer's own tasks.
        for side in "ab":
            own = {t["id"] for t in made[side]["tasks"]}
            assert {t["id"] for t in made[side]["claimed"]} <= own


def test_event_streams_and_public_content_do_not_cross(tracker_url, make_key):
    project = f"iso-{uuid.uuid4().hex[:8]}"
    key_a, key_b = make_key(tenant_name=f"sa-{project}"), make_key(tenant_name=f"sb-{project}")
    stream_b = SSEReader(tracker_url, key_b)
    try:
        with client_for(tracker_url, key_a) as a:
            h = ok(
                a.post(
                    "/handoffs",
                    json={"project": project, "task": "t", "direction": "cc_to_ai", "content": "# only by its URL"},
                ),
                201,
            )
            ok(a.post("/tasks", json={"project": project, "title": "a's"}), 201)
        with pytest.raises(queue.Empty):
            stream_b.next(timeout=1.0)
    finally:
        stream_b.close()
    # Public content is reachable only through the unguessable id it was published under;
    # every other id answers the same 404, whoever asks.
    assert httpx.get(h["public_url"]).text == "# only by its URL"
    unknown = httpx.get(f"{tracker_url}/handoffs/{uuid.uuid4()}/content")
    with client_for(tracker_url, key_b) as b:
        assert b.get(f"/handoffs/{h['id']}").status_code == 404
    assert unknown.status_code == 404 and json.loads(unknown.text)["code"] == "HANDOFF_NOT_FOUND"
