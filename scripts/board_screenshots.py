"""Screenshots of the board for the README (docs/board.png, docs/task.png).

Starts a throwaway tracker on the embedded PostgreSQL, fills a demo project the way agents would
(through the REST API), signs in as a person and photographs the project board and a task page,
driving Debian's chromium like the browser tests do (tests/board/conftest.py).

    .venv/bin/python scripts/board_screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.board.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PROJECT = "checkout"


def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "TRACKER_DATA_DIR": str(data_dir), "TRACKER_PORT": str(port), "TRACKER_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "tracker_service", "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the tracker did not start")


def key(data_dir: Path, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tracker_service", "keys", "create", "--name", name],
        env={**os.environ, "TRACKER_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"tracker keys create failed:\n{out.stderr}")
    return next(word for word in out.stdout.split() if word.startswith("trk_") and not word.endswith("…"))


def seed(url: str, agent_key: str) -> str:
    """A morning of agent work: an epic with children, claims, a review, a blocked task."""
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {agent_key}"}, timeout=10)
    reviewed = api.post(
        "/tasks",
        json={
            "project": PROJECT,
            "title": "Address form validation",
            "priority": "critical",
            "requires_review": True,
            "tags": ["frontend"],
        },
    ).json()
    api.post("/tasks/next", json={"project": PROJECT, "agent": "claude-code-4"})
    api.put(
        f"/tasks/{reviewed['id']}/status",
        json={
            "status": "in_review",
            "agent": "claude-code-4",
            "completion_notes": "Postcode and phone validated on blur; 14 new unit tests.",
        },
    )
    epic = api.post(
        "/tasks",
        json={
            "project": PROJECT,
            "title": "Guest checkout",
            "priority": "high",
            "tags": ["epic"],
            "description": "Let people buy **without an account**.\n\n- card and wallet payments\n"
            "- order confirmation by email\n- no regressions in the signed-in flow",
        },
    ).json()
    children = [
        ("Payment form without sign-in", "critical", ["frontend"]),
        ("Stripe intent for guests", "high", ["backend", "payments"]),
        ("Confirmation email template", "medium", ["email"]),
        ("Rate-limit guest orders", "medium", ["backend", "security"]),
        ("E2E test: guest buys a mug", "low", ["tests"]),
    ]
    made = [
        api.post(
            "/tasks",
            json={"project": PROJECT, "title": t, "priority": p, "tags": tags, "parent": epic["key"]},
        ).json()
        for t, p, tags in children
    ]
    api.post(
        "/tasks",
        json={"project": PROJECT, "title": "Upgrade the PDF invoice library", "priority": "low", "tags": ["chore"]},
    )
    api.post(
        "/tasks",
        json={
            "project": PROJECT,
            "title": "Cart totals in the header",
            "depends_on": [made[1]["key"]],
            "tags": ["frontend"],
        },
    )
    for agent in ("claude-code-1", "codex-2", "claude-code-3"):
        api.post("/tasks/next", json={"project": PROJECT, "agent": agent})
    api.put(f"/tasks/{made[4]['id']}/status", json={"status": "blocked"})
    chore = api.post("/tasks/next", json={"project": PROJECT, "agent": "codex-5"}).json()["task"]
    api.put(f"/tasks/{chore['id']}/status", json={"status": "completed", "agent": "codex-5"})
    api.post(
        "/handoffs",
        json={
            "project": PROJECT,
            "task": "guest-checkout-plan",
            "direction": "ai_to_cc",
            "content": "# Plan\n\nSplit into five tasks under the epic.",
        },
    )
    return str(epic["key"])


def main() -> None:
    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trk-shots-") as tmp:
        data_dir = Path(tmp)
        proc, url = start(data_dir)
        try:
            task_key = seed(url, key(data_dir, "agent-pool"))
            person = key(data_dir, "alice")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 820}, device_scale_factor=1)
                page.goto(f"{url}/board/signin")
                page.get_by_label("API key").fill(person)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(f"{url}/board")
                page.goto(f"{url}/board/projects/{PROJECT}")
                page.wait_for_selector("#live-state.on")
                page.screenshot(path=out / "board.png")
                page.goto(f"{url}/board/tasks/{task_key}")
                page.wait_for_selector("#live-state.on")
                page.screenshot(path=out / "task.png", full_page=True)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"wrote {out / 'board.png'} and {out / 'task.png'}")


if __name__ == "__main__":
    main()
