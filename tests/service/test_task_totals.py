"""A list's `total` without filters comes from running totals kept by triggers (migration 0006);
they must equal a count of the rows after anything that adds or removes tasks, also under races."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.domain.tasks.service import FOLD_TASK_TOTALS


def totals_and_counts(db, tenant):
    with db.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT project, sum(delta) FROM task_totals WHERE tenant = :t GROUP BY 1 HAVING sum(delta) <> 0 "
                "ORDER BY 1"
            ),
            {"t": tenant},
        ).all()
        counted = conn.execute(
            text("SELECT project, count(*) FROM tasks WHERE tenant = :t GROUP BY 1 ORDER BY 1"), {"t": tenant}
        ).all()
    return [(p, int(n)) for p, n in kept], [(p, int(n)) for p, n in counted]


def test_totals_follow_creation_deletion_and_failed_batches(api, db, tenant, project):
    other = f"{project}-b"
    one = ok(api.post("/tasks", json={"project": project, "title": "one"}), 201)
    ok(api.post("/tasks/batch", json={"tasks": [{"project": p, "title": "t"} for p in (project, other, other)]}), 201)
    ok(api.post("/tasks", json={"project": other, "title": "dep", "key": "D-1"}), 201)
    ok(api.post("/tasks/batch", json={"tasks": [{"project": other, "title": "d", "depends_on": ["D-1"]}]}), 201)
    # A batch that fails (duplicate key) leaves neither tasks nor totals behind.
    failing = [{"project": project, "title": "a"}, {"project": project, "title": "b", "key": "TASK-001"}]
    problem(api.post("/tasks/batch", json={"tasks": failing}), 409, "DUPLICATE_KEY")
    assert api.delete(f"/tasks/{one['id']}").status_code == 204
    kept, counted = totals_and_counts(db, tenant)
    assert kept == counted == [(project, 1), (other, 4)]
    assert ok(api.get("/tasks", params={"project": project}))["total"] == 1
    assert ok(api.get("/tasks", params={"project": other, "limit": 1})) | {"tasks": []} == {
        "tasks": [],
        "total": 4,
        "has_more": True,
    }
    assert ok(api.get("/tasks", params={"limit": 1}))["total"] == 5  # the whole tenant
    # With a filter the total is still a count of the matching rows.
    assert ok(api.get("/tasks", params={"project": other, "status": "pending"}))["total"] == 4
    assert ok(api.get("/tasks", params={"project": "nothing-here"}))["total"] == 0


def test_totals_stay_exact_under_concurrent_creation_and_deletion(tracker_url, api_key, api, db, tenant, project):
    projects = [f"{project}-{i}" for i in range(3)]

    def worker(n: int) -> None:
        with client_for(tracker_url, api_key) as c:
            for round_ in range(6):
                items = [{"project": projects[(n + round_ + j) % 3], "title": f"w{n}"} for j in range(3)]
                added = ok(c.post("/tasks/batch", json={"tasks": items}), 201)
                ok(c.post("/tasks", json={"project": projects[n % 3], "title": "single"}), 201)
                if round_ % 2:
                    assert c.delete(f"/tasks/{added['ids'][0]}").status_code == 204

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    kept, counted = totals_and_counts(db, tenant)
    assert kept == counted
    assert sum(n for _, n in counted) == 8 * (6 * 4 - 3)
    # Folding (the sweeper's job) leaves one row per project and the same totals, also while
    # tasks are being created next to it.
    with ThreadPoolExecutor(2) as pool:
        creating = pool.submit(worker, 0)
        for _ in range(5):
            with db.begin() as conn:
                conn.execute(FOLD_TASK_TOTALS)
        creating.result()
    with db.begin() as conn:
        conn.execute(FOLD_TASK_TOTALS)
        rows = conn.execute(text("SELECT count(*) FROM task_totals WHERE tenant = :t"), {"t": tenant}).scalar_one()
    assert rows == 3
    kept, counted = totals_and_counts(db, tenant)
    assert kept == counted and sum(n for _, n in counted) == 9 * (6 * 4 - 3)
    for p, n in counted:
        assert ok(api.get("/tasks", params={"project": p, "limit": 1}))["total"] == n
