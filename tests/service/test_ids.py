"""The ID registry: peek, atomic allocation, reservations, reissue of released IDs, admin counters."""

from __future__ import annotations

from tests.conftest import client_for
from tests.helpers import ok, problem


def adopt(tracker_url, make_key, project, type_, last_value):
    with client_for(tracker_url, make_key("admin")) as admin:
        return ok(admin.put(f"/ids/{project}/{type_}", json={"last_value": last_value}))


def test_first_id_and_format(api, project):
    assert ok(api.get("/ids/next", params={"type": "SPEC", "project": project}))["next_id"] == "SPEC-001"
    got = ok(api.post("/ids/next", json={"type": "spec", "project_id": project}), 201)
    assert got == {"next_id": "SPEC-001", "number": 1, "type": "SPEC", "project": project}
    assert ok(api.post("/ids/next", json={"type": "SPEC", "project": project}), 201)["next_id"] == "SPEC-002"


def test_spec_001_next_id_after_27(api, tracker_url, make_key, project):
    adopt(tracker_url, make_key, project, "US", 27)
    # Peeking allocates nothing.
    for _ in range(2):
        assert ok(api.get("/ids/next", params={"type": "US", "project": project}))["next_id"] == "US-028"
    assert ok(api.get("/ids/next", params={"type": "US", "project_id": project}))["next_id"] == "US-028"
    assert ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-028"
    assert ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-029"


def test_spec_001_reserve_six_after_27(api, tracker_url, make_key, project):
    adopt(tracker_url, make_key, project, "US", 27)
    res = ok(api.post("/ids/reserve", json={"type": "US", "count": 6, "project_id": project}), 201)
    assert res["reserved_ids"] == ["US-028", "US-029", "US-030", "US-031", "US-032", "US-033"]
    assert res["reservation_id"] and res["expires_at"] and res["status"] == "active"
    assert ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-034"


def test_ids_are_scoped_by_project_and_type(api, project):
    ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)
    assert ok(api.post("/ids/next", json={"type": "BUG", "project_id": project}), 201)["next_id"] == "BUG-001"
    assert ok(api.post("/ids/next", json={"type": "US", "project_id": project + "x"}), 201)["next_id"] == "US-001"
    counters = ok(api.get("/ids", params={"project": project}))["counters"]
    assert {(c["type"], c["last_id"], c["next_id"]) for c in counters} == {
        ("BUG", "BUG-001", "BUG-002"),
        ("US", "US-001", "US-002"),
    }


def test_release_returns_unused_ids_reissued_lowest_first(api, project):
    res = ok(api.post("/ids/reserve", json={"type": "US", "count": 4, "project_id": project}), 201)
    rid = res["reservation_id"]
    released = ok(api.post(f"/ids/reservations/{rid}/release", json={"keep": ["US-002"]}))
    assert released["status"] == "released" and released["released_ids"] == ["US-001", "US-003", "US-004"]
    assert ok(api.post(f"/ids/reservations/{rid}/release", json={"keep": ["US-002"]}))["status"] == "released"
    problem(api.post(f"/ids/reservations/{rid}/commit"), 409, "CONFLICT")
    assert ok(api.get("/ids/next", params={"type": "US", "project": project}))["next_id"] == "US-001"
    got = [ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] for _ in range(4)]
    assert got == ["US-001", "US-003", "US-004", "US-005"]


def test_commit_and_errors(api, project):
    rid = ok(api.post("/ids/reserve", json={"type": "US", "count": 2, "project_id": project}), 201)["reservation_id"]
    assert ok(api.post(f"/ids/reservations/{rid}/commit"))["status"] == "committed"
    assert ok(api.post(f"/ids/reservations/{rid}/commit"))["status"] == "committed"  # retry is a no-op
    problem(api.post(f"/ids/reservations/{rid}/release"), 409, "CONFLICT")
    body = problem(
        api.post("/ids/reservations/00000000-0000-0000-0000-000000000000/commit"), 404, "RESERVATION_NOT_FOUND"
    )
    assert "00000000" in body["detail"]
    body = problem(api.post("/ids/reservations/not-a-uuid/commit"), 400, "INVALID_REQUEST")
    assert body["errors"][0]["field"] == "reservation_id"
    rid2 = ok(api.post("/ids/reserve", json={"type": "US", "count": 2, "project_id": project}), 201)["reservation_id"]
    problem(api.post(f"/ids/reservations/{rid2}/release", json={"keep": ["US-999"]}), 400, "INVALID_REQUEST")


def test_reserve_validation(api, project):
    for count in (0, 101, "x"):
        problem(
            api.post("/ids/reserve", json={"type": "US", "count": count, "project_id": project}), 400, "INVALID_REQUEST"
        )
    problem(api.post("/ids/reserve", json={"type": "U S", "count": 1, "project_id": project}), 400, "INVALID_REQUEST")
    problem(api.post("/ids/next", json={"type": "US"}), 400, "INVALID_REQUEST")
    problem(api.get("/ids/next", params={"type": "US"}), 400, "INVALID_REQUEST")
    problem(api.get("/ids/next", params={"type": "9X", "project": project}), 400, "INVALID_REQUEST")


def test_lapsed_reservations_are_listed_not_reused(api, db, project):
    from sqlalchemy import text

    rid = ok(api.post("/ids/reserve", json={"type": "US", "count": 3, "project_id": project, "ttl_seconds": 60}), 201)[
        "reservation_id"
    ]
    with db.begin() as conn:
        conn.execute(
            text("UPDATE id_reservations SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": rid}
        )
    lapsed = ok(api.get("/ids/reservations", params={"project": project, "status": "lapsed"}))
    assert [r["reservation_id"] for r in lapsed["reservations"]] == [rid]
    assert lapsed["reservations"][0]["status"] == "lapsed"
    assert ok(api.get("/ids/reservations", params={"project": project, "status": "active"}))["total"] == 0
    assert ok(api.post("/ids/next", json={"type": "US", "project_id": project}), 201)["next_id"] == "US-004"
    assert ok(api.post(f"/ids/reservations/{rid}/commit"))["status"] == "committed"


def test_counter_moves_forward_only_and_needs_admin(api, tracker_url, make_key, project):
    problem(api.put(f"/ids/{project}/US", json={"last_value": 10}), 403, "FORBIDDEN")
    with client_for(tracker_url, make_key("admin")) as admin:
        assert ok(admin.put(f"/ids/{project}/US", json={"last_value": 10}))["next_id"] == "US-011"
        assert ok(admin.put(f"/ids/{project}/US", json={"last_value": 10}))["last_value"] == 10
        body = problem(admin.put(f"/ids/{project}/US", json={"last_value": 5}), 409, "CONFLICT")
        assert body["current_value"] == 10 and "US-010" in body["detail"]
        problem(admin.put(f"/ids/{project}/US", json={"last_value": -1}), 400, "INVALID_REQUEST")


def test_task_keys_come_from_the_registry(api, project):
    assert ok(api.post("/ids/next", json={"type": "TASK", "project_id": project}), 201)["next_id"] == "TASK-001"
    assert ok(api.post("/tasks", json={"project": project, "title": "t"}), 201)["key"] == "TASK-002"
