"""A list's `total` by project and status comes from running totals kept by triggers (migration
0006); they must equal a count of the rows after anything that adds, removes or moves tasks, also
under races, and whatever the sweeper's folding does meanwhile."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from tests.conftest import client_for
from tests.helpers import ok, problem
from tracker_service.domain.tasks.housekeeping import FOLD_TASK_TOTALS


def totals_and_counts(db, tenant):
    with db.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT project, status, sum(delta) FROM task_totals WHERE tenant = :t GROUP BY 1, 2 "
                "HAVING sum(delta) <> 0 ORDER BY 1, 2"
            ),
            {"t": tenant},
        ).all()
        counted = conn.execute(
            text("SELECT project, status, count(*) FROM tasks WHERE tenant = :t GROUP BY 1, 2 ORDER BY 1, 2"),
            {"t": tenant},
        ).all()
    return [(p, s, int(n)) for p, s, n in kept], [(p, s, int(n)) for p, s, n in counted]


def total(api, **params) -> int:
    return ok(api.get("/tasks", params={"limit": 1, **params}))["total"]


def test_totals_follow_every_kind_of_change(api, db, tenant, project):
    other = f"{project}-b"
    one = ok(api.post("/tasks", json={"project": project, "title": "one"}), 201)
    ok(api.post("/tasks/batch", json={"tasks": [{"project": p, "title": "t"} for p in (project, other, other)]}), 201)
    ok(api.post("/tasks", json={"project": other, "title": "dep", "key": "D-1", "status": "completed"}), 201)
    ok(api.post("/tasks/batch", json={"tasks": [{"project": other, "title": "d", "depends_on": ["D-1"]}]}), 201)
    # Batches that fail (duplicate keys, on the one-statement and on the one-by-one path) leave
    # neither tasks nor totals behind.
    for failing in (
        [{"project": project, "title": "a"}, {"project": other, "title": "b", "key": "D-1"}],
        [{"project": project, "title": "a"}, {"project": project, "title": "b", "key": "TASK-001"}],
    ):
        problem(api.post("/tasks/batch", json={"tasks": failing}), 409, "DUPLICATE_KEY")
    claimed = ok(api.post("/tasks/next", json={"project": other, "agent": "a"}))["task"]
    ok(api.put(f"/tasks/{claimed['id']}/status", json={"status": "completed"}))
    ok(api.post("/tasks/next", json={"project": other, "agent": "b"}))
    ok(api.patch(f"/tasks/{one['id']}", json={"status": "blocked"}))
    cancel = ok(api.post("/tasks", json={"project": project, "title": "to cancel", "key": "C-1"}), 201)
    ok(api.delete(f"/task/{cancel['id']}"))
    ok(api.put("/tasks/C-1/status", params={"project": project}, json={"status": "cancelled"}))  # a repeat
    kept, counted = totals_and_counts(db, tenant)
    assert kept == counted
    assert total(api, project=project) == 3 and total(api, project=other) == 4
    assert total(api, project=other, status="completed") == 2
    assert total(api, project=other, status="pending,in_progress") == 2
    assert total(api, status="blocked") == 1 and total(api) == 7  # the whole tenant
    assert api.delete(f"/tasks/{one['id']}").status_code == 204
    assert total(api, project=project) == 2 and total(api, status="blocked") == 0
    kept, counted = totals_and_counts(db, tenant)
    assert kept == counted
    # Other filters still count the matching rows; nothing is 0 rather than missing.
    assert total(api, project=other, assigned_to="b") == 1
    assert total(api, project="nothing-here") == 0


def test_totals_stay_exact_under_concurrent_writes_and_folding(tracker_url, api_key, api, db, tenant, project):
    projects = [f"{project}-{i}" for i in range(3)]

    def worker(n: int) -> None:
        with client_for(tracker_url, api_key) as c:
            for round_ in range(6):
                items = [{"project": projects[(n + round_ + j) % 3], "title": f"w{n}"} for j in range(3)]
                added = ok(c.post("/tasks/batch", json={"tasks": items}), 201)
                ok(c.post("/tasks", json={"project": projects[n % 3], "title": "single"}), 201)
                if task := ok(c.post("/tasks/next", json={"project": projects[round_ % 3], "agent": f"a{n}"}))["task"]:
                    ok(c.put(f"/tasks/{task['id']}/status", json={"status": ("completed", "pending")[n % 2]}))
                if round_ % 2:
                    assert c.delete(f"/tasks/{added['ids'][0]}").status_code == 204

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    kept, counted = totals_and_counts(db, tenant)
    assert kept == counted
    assert sum(n for *_, n in counted) == 8 * (6 * 4 - 3)
    # Folding (the sweeper's job) leaves one row per project and status and the same totals, also
    # while tasks are created and claimed next to it.
    with ThreadPoolExecutor(2) as pool:
        writing = pool.submit(worker, 0)
        for _ in range(5):
            with db.begin() as conn:
                conn.execute(FOLD_TASK_TOTALS)
        writing.result()
    with db.begin() as conn:
        conn.execute(FOLD_TASK_TOTALS)
    kept, counted = totals_and_counts(db, tenant)
    with db.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM task_totals WHERE tenant = :t"), {"t": tenant}).scalar_one()
    assert kept == counted and rows == len(counted)
    assert sum(n for *_, n in counted) == 9 * (6 * 4 - 3)
    for p, status, n in counted:
        assert total(api, project=p, status=status) == n
