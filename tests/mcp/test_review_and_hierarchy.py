"""End to end over stdio: subtasks and a review, as two agents with their own keys do it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from .bridge_support import PROJECT, bridge_env, error_text, ok, with_bridge

pytestmark = pytest.mark.slow


def test_a_worker_builds_subtasks_and_another_agent_reviews(tracker_url: str, make_key: Any, tmp_path: Path) -> None:
    worker_env = bridge_env(tracker_url, make_key("write", name="worker"))
    reviewer_env = bridge_env(tracker_url, make_key("write", name="reviewer"))
    found: dict[str, Any] = {}

    async def work(mcp: Client) -> None:
        tree = [
            {"project_id": PROJECT, "task_id": "EPIC-1", "title": "Epic", "requires_review": True},
            {"project_id": PROJECT, "title": "Part one", "parent": "EPIC-1"},
        ]
        added = ok(await mcp.call_tool("add_task", {"tasks": tree}))
        part = added["task_ids"][1]
        children = ok(await mcp.call_tool("list_tasks", {"parent": "EPIC-1"}))
        assert [t["key"] for t in children["tasks"]] == [part]
        epic = ok(await mcp.call_tool("get_task", {"task_id": "EPIC-1"}))
        assert epic["children"] == {"total": 1, "by_status": {"pending": 1}} and epic["requires_review"] is True
        claimed = ok(await mcp.call_tool("get_next_task", {"project_id": PROJECT, "claim": True, "agent": "w"}))
        assert claimed["task"]["key"] == part, "the container waits for its children"
        ok(await mcp.call_tool("update_task_status", {"task_id": part, "status": "completed", "agent": "w"}))
        claimed = ok(await mcp.call_tool("get_next_task", {"project_id": PROJECT, "claim": True, "agent": "w"}))
        assert claimed["task"]["key"] == "EPIC-1"
        refused = await mcp.call_tool("update_task_status", {"task_id": "EPIC-1", "status": "completed", "agent": "w"})
        assert "409 - task EPIC-1 requires review" in error_text(refused, "update_task_status")
        sent = ok(await mcp.call_tool("update_task_status", {"task_id": "EPIC-1", "status": "in_review", "agent": "w"}))
        assert sent["status"] == "in_review"
        self_review = await mcp.call_tool("update_task_status", {"task_id": "EPIC-1", "status": "completed"})
        assert "403" in error_text(self_review, "update_task_status")

    async def review(mcp: Client) -> None:
        queue = ok(await mcp.call_tool("list_tasks", {"project_id": PROJECT, "status": "in_review"}))
        assert [t["key"] for t in queue["tasks"]] == ["EPIC-1"]
        done = ok(
            await mcp.call_tool(
                "update_task_status",
                {"task_id": "EPIC-1", "status": "completed", "agent": "r", "review_notes": "Looks right"},
            )
        )
        found.update(done)

    with_bridge(worker_env, tmp_path, work)
    with_bridge(reviewer_env, tmp_path, review)
    assert found["status"] == "completed" and found["review_notes"] == "Looks right"
