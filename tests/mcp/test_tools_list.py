"""The ``tools/list`` answer: its size budget, its snapshot, and the rules every tool follows.

Regenerate the snapshot after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/mcp``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_tools.client import TrackerClient
from mcp_tools.config import Config
from mcp_tools.server import build_server

from .bridge_support import SNAPSHOT

#: Characters of the compact JSON ``tools`` array. Peers range from 7,000 to 60,000; measured
#: 27,205 for the first 15 tools with described inputs and full output schemas (about 40% of it
#: is output schemas, four of which carry the whole Task), then 29,457 with leases (heartbeat_task
#: ~1,200, agent on update_task_status, Task.type) and the tracker's richer handoff and log
#: shapes. Kept at 30,000: the next tool must pay for itself by trimming. Grow it only on purpose.
BUDGET = 30_000

EXPECTED_TOOLS = {
    # spec 001
    "get_next_task",
    "update_task_status",
    "heartbeat_task",
    "get_next_available_id",
    "reserve_id_range",
    "add_task",
    # spec 000 tasks and handoffs, spec 004 delegation
    "list_tasks",
    "get_task",
    "update_task",
    "delete_task",
    "create_handoff",
    "list_handoffs",
    "get_handoff",
    "update_handoff_status",
    "get_log",
    "delegate_task",
}
READ_ONLY = {"list_tasks", "get_task", "list_handoffs", "get_handoff", "get_log"}
DESTRUCTIVE = {"update_task", "delete_task"}


def listed_tools() -> list[dict[str, Any]]:
    """The ``tools`` array as it goes on the wire (camelCase, unset fields omitted)."""

    async def go() -> list[dict[str, Any]]:
        server = build_server(TrackerClient(Config(api_key="unused")))
        async with Client(server) as mcp:
            result = await mcp.list_tools()
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)["tools"]

    return anyio.run(go)


def wire_size(tools: list[dict[str, Any]]) -> int:
    return len(json.dumps(tools, separators=(",", ":"), ensure_ascii=False))


@pytest.fixture(scope="module")
def tools() -> list[dict[str, Any]]:
    return listed_tools()


def test_the_tool_set(tools: list[dict[str, Any]]) -> None:
    assert {tool["name"] for tool in tools} == EXPECTED_TOOLS


def test_tools_list_stays_within_its_budget(tools: list[dict[str, Any]]) -> None:
    size = wire_size(tools)
    print(f"tools/list: {len(tools)} tools, {size} characters (budget {BUDGET})")
    assert size <= BUDGET, f"tools/list grew to {size} characters, past the budget of {BUDGET}"


def test_tools_list_matches_the_snapshot(tools: list[dict[str, Any]]) -> None:
    current = json.dumps(tools, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1"
    assert current == SNAPSHOT.read_text(), "tools/list changed; review, then run with UPDATE_SNAPSHOTS=1"


def test_every_tool_sets_every_hint_explicitly(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        hints = tool["annotations"]
        assert set(hints) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}, tool["name"]
        assert hints["readOnlyHint"] is (tool["name"] in READ_ONLY), tool["name"]
        assert hints["destructiveHint"] is (tool["name"] in DESTRUCTIVE), tool["name"]
        assert hints["openWorldHint"] is False, tool["name"]


def test_every_tool_has_structured_output(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        schema = tool.get("outputSchema")
        assert schema and schema.get("type") == "object" and schema.get("properties"), tool["name"]


def test_every_parameter_is_described(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        schema = tool["inputSchema"]
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool['name']}.{name} has no description"
        for model in schema.get("$defs", {}).values():
            for name, prop in model.get("properties", {}).items():
                assert prop.get("description"), f"{tool['name']}: {name} has no description"


def test_descriptions_are_short_and_dedented(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        description = tool["description"]
        assert 20 <= len(description) <= 400, (tool["name"], len(description))
        assert "\n " not in description, tool["name"]


def test_lists_return_summaries_with_paging(tools: list[dict[str, Any]]) -> None:
    by_name = {tool["name"]: tool for tool in tools}
    for name, items, heavy in [("list_tasks", "tasks", "description"), ("list_handoffs", "handoffs", "content")]:
        schema = by_name[name]["outputSchema"]
        assert {"total", "has_more", "next_offset", items} <= set(schema["properties"]), name
        assert {"limit", "offset"} <= set(by_name[name]["inputSchema"]["properties"]), name
        (item,) = schema["$defs"].values()
        assert heavy not in item["properties"], name
