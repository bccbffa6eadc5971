"""Review gates: a task that requires review is completed only by someone other than its worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import client_for
from tests.helpers import ok, problem


@pytest.fixture
def reviewer(tracker_url, make_key):  # type: ignore[no-untyped-def]
    """A second write key of the same tenant: another agent or a person."""
    with client_for(tracker_url, make_key("write", name="reviewer-key")) as c:
        yield c


@pytest.fixture
def admin(tracker_url, make_key):  # type: ignore[no-untyped-def]
    with client_for(tracker_url, make_key("admin")) as c:
        yield c


def submitted(api, project: str, **fields) -> dict:  # type: ignore[no-untyped-def]
    """A task requiring review, claimed by agent w and sent to review by it."""
    task = ok(
        api.post("/tasks", json={"project": project, "title": "reviewed work", "requires_review": True, **fields}), 201
    )
    claimed = ok(api.post("/tasks/next", json={"project": project, "agent": "w"}))["task"]
    assert claimed["id"] == task["id"]
    done = problem(
        api.put(f"/tasks/{task['id']}/status", json={"status": "completed", "agent": "w"}), 409, "REVIEW_REQUIRED"
    )
    assert "in_review" in done["detail"]
    sent = ok(
        api.put(f"/tasks/{task['id']}/status", json={"status": "in_review", "agent": "w", "completion_notes": "ready"})
    )["updated_task"]
    assert sent["status"] == "in_review" and sent["lease_expires_at"] is None and sent["assigned_to"] == "w"
    return sent


def events(api, project: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(e["event"], e["actor"]) for e in reversed(ok(api.get("/log", params={"project": project}))["entries"])]


def test_the_worker_cannot_approve_its_own_work(api, reviewer, project):
    task = submitted(api, project)
    url = f"/tasks/{task['id']}/status"
    # Not by the key that asked for the review, whatever agent it names; not by the worker on another key.
    problem(api.put(url, json={"status": "completed", "agent": "someone-else"}), 403, "SELF_REVIEW")
    problem(api.patch(f"/tasks/{task['id']}", json={"status": "completed"}), 403, "SELF_REVIEW")
    problem(reviewer.put(url, json={"status": "completed", "agent": "w"}), 403, "SELF_REVIEW")
    # The claim never hands out a task in review.
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "x"}))["task"] is None
    queue = ok(api.get("/tasks", params={"project": project, "status": "in_review"}))
    assert [t["id"] for t in queue["tasks"]] == [task["id"]]
    approved = ok(reviewer.put(url, json={"status": "completed", "agent": "rita", "review_notes": "LGTM"}))
    assert approved["updated_task"]["status"] == "completed" and approved["updated_task"]["review_notes"] == "LGTM"
    assert events(api, project)[-2:] == [("task.review_requested", "w"), ("task.approved", "rita")]
    log = ok(api.get("/log", params={"project": project, "type": "task.approved"}))["entries"]
    assert log and log[0]["id"] == task["id"]


def test_changes_requested_go_back_to_the_worker_or_the_queue(api, reviewer, project):
    task = submitted(api, project)
    url = f"/tasks/{task['id']}/status"
    back = ok(reviewer.put(url, json={"status": "in_progress", "review_notes": "add tests"}))["updated_task"]
    assert (back["status"], back["assigned_to"], back["review_notes"]) == ("in_progress", "w", "add tests")
    assert back["lease_expires_at"], "the worker's lease runs again"
    ok(api.put(url, json={"status": "in_review", "agent": "w"}))
    released = ok(reviewer.put(url, json={"status": "pending", "review_notes": "someone else, please"}))
    assert released["updated_task"]["assigned_to"] is None
    kinds = [e for e, _ in events(api, project)]
    assert kinds.count("task.changes_requested") == 2 and kinds.count("task.review_requested") == 2


def test_dependents_wait_for_the_approval(api, reviewer, project):
    task = submitted(api, project, key="REVIEWED")
    ok(api.post("/tasks", json={"project": project, "title": "after review", "depends_on": ["REVIEWED"]}), 201)
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "x"}))["task"] is None
    ok(reviewer.put(f"/tasks/{task['id']}/status", json={"status": "completed"}))
    assert ok(api.post("/tasks/next", json={"project": project, "agent": "x"}))["task"]["title"] == "after review"


def test_project_settings_default_and_restrict_review(api, reviewer, admin, project):
    problem(api.put(f"/projects/{project}/settings", json={"requires_review": True}), 403, "FORBIDDEN")
    settings = ok(admin.put(f"/projects/{project}/settings", json={"requires_review": True, "reviewers": ["rita"]}))
    assert settings == {**settings, "requires_review": True, "reviewers": ["rita"]}
    assert ok(api.get(f"/projects/{project}/settings"))["reviewers"] == ["rita"]
    task = submitted(api, project)
    assert ok(api.post("/tasks", json={"project": project, "title": "t"}), 201)["requires_review"] is True
    problem(api.post("/tasks", json={"project": project, "title": "t", "status": "completed"}), 400, "INVALID_REQUEST")
    url = f"/tasks/{task['id']}/status"
    body = problem(reviewer.put(url, json={"status": "completed", "agent": "bob"}), 403, "NOT_A_REVIEWER")
    assert "rita" not in body["detail"] or "reviewers" in body["detail"]
    ok(reviewer.put(url, json={"status": "completed", "agent": "rita"}))
    # Turning the gate off on a task is for admins.
    other = ok(api.post("/tasks", json={"project": project, "title": "u"}), 201)
    problem(api.patch(f"/tasks/{other['id']}", json={"requires_review": False}), 403, "FORBIDDEN")
    assert ok(admin.patch(f"/tasks/{other['id']}", json={"requires_review": False}))["requires_review"] is False
    ok(admin.put(f"/projects/{project}/settings", json={"requires_review": False}))
    assert ok(admin.get(f"/projects/{project}/settings"))["reviewers"] == ["rita"], "fields left out keep their values"


def test_two_reviewers_racing_one_verdict_wins(api, reviewer, tracker_url, make_key, project):
    second_key = make_key("write", name="second-reviewer")
    for round_ in range(8):
        task = submitted(api, f"{project}-{round_}")
        url = f"/tasks/{task['id']}/status"

        def verdict(args: tuple[str, str], url: str = url) -> tuple[str, int]:
            key_, status = args
            with client_for(tracker_url, key_) as c:
                return status, c.put(url, json={"status": status, "agent": f"r-{status}"}).status_code

        first_key = reviewer.headers["Authorization"].split()[1]
        with ThreadPoolExecutor(2) as pool:
            results = dict(pool.map(verdict, [(first_key, "completed"), (second_key, "in_progress")]))
        final = ok(api.get(f"/tasks/{task['id']}"))["status"]
        # The loser finds the task moved on: completed cannot go back to in_progress (400), and work
        # sent back cannot be completed without another review (409).
        winner = next(status for status, code in results.items() if code == 200)
        loser = next(code for status, code in results.items() if status != winner)
        assert loser == (400 if winner == "completed" else 409), results
        assert final == winner, (final, results)
