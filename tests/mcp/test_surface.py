"""Toolsets and read-only: ``--toolsets``/``--read-only`` (and their environment variables) choose what a
process offers; over streamable HTTP the ``X-MCP-Toolsets``/``X-MCP-Readonly`` headers narrow it per client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
import responses
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from mcp_tools.client import TrackerClient
from mcp_tools.config import TOOLSETS, Config, ConfigError, Surface
from mcp_tools.server import build_server

from .bridge_support import API_KEY, URL, running_bridge, task_json
from .test_http import free_port

READS = {"list_tasks", "get_task", "get_next_task", "list_handoffs", "get_handoff", "get_log"}


def listing(surface: Surface) -> dict[str, dict[str, Any]]:
    async def go() -> dict[str, dict[str, Any]]:
        async with Client(build_server(TrackerClient(Config(api_key=API_KEY)), surface)) as mcp:
            tools = (await mcp.list_tools()).model_dump(mode="json", by_alias=True, exclude_none=True)["tools"]
            templates = await mcp.list_resource_templates()
        uris = {t.uri_template for t in templates.resource_templates}
        return {"resources": {"uris": uris}, **{tool["name"]: tool for tool in tools}}

    return anyio.run(go)


def call(surface: Surface, name: str, **arguments: Any) -> CallToolResult:
    async def go() -> CallToolResult:
        async with Client(build_server(TrackerClient(Config(api_key=API_KEY, base_url=URL)), surface)) as mcp:
            return await mcp.call_tool(name, arguments)

    return anyio.run(go)


# Configuration


def test_by_default_every_toolset_and_the_writers() -> None:
    config = Config.from_env({"TASK_TRACKING_API_KEY": "k"})
    assert config.surface == Surface(frozenset(TOOLSETS), read_only=False)


def test_flags_and_environment_choose_toolsets_and_read_only() -> None:
    env = {"TASK_TRACKING_API_KEY": "k", "TASK_TRACKING_TOOLSETS": "tasks, IDS", "TASK_TRACKING_READ_ONLY": "true"}
    assert Config.from_env(env).surface == Surface(frozenset({"tasks", "ids"}), read_only=True)
    flags = Config.from_env(env, ["--toolsets", "handoffs"]).surface
    assert flags == Surface(frozenset({"handoffs"}), read_only=True)
    assert Config.from_env({"TASK_TRACKING_API_KEY": "k"}, ["--read-only", "--toolsets", "all"]).surface.read_only
    http = Config.from_env({"TASK_TRACKING_TOOLSETS": "activity"}, ["--transport", "streamable-http"])
    assert http.surface.toolsets == {"activity"}


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"TASK_TRACKING_TOOLSETS": "tasks,boards"}, [], "TASK_TRACKING_TOOLSETS: unknown toolset boards; choose from"),
        ({}, ["--toolsets", "nope"], "--toolsets: unknown toolset nope; choose from tasks, ids, handoffs, activity"),
        ({"TASK_TRACKING_READ_ONLY": "maybe"}, [], "TASK_TRACKING_READ_ONLY must be true or false, got 'maybe'"),
    ],
)
def test_a_bad_surface_is_refused_before_serving(env: dict[str, str], args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Config.from_env({"TASK_TRACKING_API_KEY": "k", **env}, args)


# What each surface lists


def test_read_only_lists_the_reads_marked_read_only_and_get_next_task_without_claim() -> None:
    tools = listing(Surface(read_only=True))
    resources = tools.pop("resources")

    assert set(tools) == READS
    for tool in tools.values():
        assert tool["annotations"] == {"readOnlyHint": True, "openWorldHint": False}, tool["name"]
    assert set(tools["get_next_task"]["inputSchema"]["properties"]) == {"project_id", "status_filter"}
    assert resources["uris"] == {"tracker://tasks/{ref}", "tracker://handoffs/{id}", "tracker://conversations/{id}"}


def test_toolsets_list_only_their_tools_and_resources() -> None:
    tools = listing(Surface(frozenset({"ids", "handoffs"})))
    resources = tools.pop("resources")

    assert set(tools) == {
        "get_next_available_id",
        "reserve_id_range",
        "create_handoff",
        "list_handoffs",
        "get_handoff",
        "update_handoff_status",
    }
    assert resources["uris"] == {"tracker://handoffs/{id}"}


def test_the_full_surface_offers_the_claim() -> None:
    tools = listing(Surface())
    assert {"claim", "agent"} <= set(tools["get_next_task"]["inputSchema"]["properties"])
    assert "readOnlyHint" not in tools["get_next_task"]["annotations"]


# What each surface refuses


def test_read_only_refuses_a_writer_and_the_claim_with_the_reason(http: responses.RequestsMock) -> None:
    read_only = Surface(read_only=True)

    delete = call(read_only, "delete_task", task_id="TASK-051")
    claim = call(read_only, "get_next_task", project_id="p", claim=True, agent="cc")

    assert delete.is_error and "delete_task changes data and this connection is read-only" in delete.content[0].text
    assert claim.is_error and "get_next_task: agent, claim cannot be used on this read-only connection" in (
        claim.content[0].text
    )
    assert not http.calls


def test_read_only_still_reads_the_next_task(http: responses.RequestsMock) -> None:
    http.get(f"{URL}/tasks/next", json={"task": task_json()})

    result = call(Surface(read_only=True), "get_next_task", project_id="p")

    assert not result.is_error and result.structured_content["task"]["key"] == "TASK-051"
    assert http.calls[0].request.method == "GET"


def test_a_tool_of_another_toolset_is_refused_by_name(http: responses.RequestsMock) -> None:
    result = call(Surface(frozenset({"ids"})), "list_tasks")

    assert result.is_error
    assert "list_tasks is in the tasks toolset, which this connection does not offer (toolsets: ids)" in (
        result.content[0].text
    )
    assert not http.calls


# Over streamable HTTP, per client


@pytest.fixture
def handoffs_bridge(http: responses.RequestsMock) -> Iterator[str]:
    """A bridge whose process offers every toolset but activity."""
    surface = Surface(frozenset({"tasks", "ids", "handoffs"}))
    with running_bridge(Config(transport="streamable-http", port=free_port(), surface=surface)) as url:
        yield url


def over_http(url: str, headers: dict[str, str], name: str | None = None, **arguments: Any) -> Any:
    async def go() -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer k", **headers}) as client:
            async with Client(streamable_http_client(f"{url}/mcp", http_client=client)) as mcp:
                if name is None:
                    return {tool.name for tool in (await mcp.list_tools()).tools}
                return await mcp.call_tool(name, arguments)

    return anyio.run(go)


def test_headers_narrow_the_surface_per_client(handoffs_bridge: str) -> None:
    everything = over_http(handoffs_bridge, {})
    handoffs = over_http(handoffs_bridge, {"X-MCP-Toolsets": "handoffs"})
    reads = over_http(handoffs_bridge, {"X-MCP-Toolsets": "handoffs,tasks", "X-MCP-Readonly": "1"})
    widened = over_http(handoffs_bridge, {"X-MCP-Toolsets": "activity,ids"})

    assert "get_log" not in everything and len(everything) == 14
    assert handoffs == {"create_handoff", "list_handoffs", "get_handoff", "update_handoff_status"}
    assert reads == {"list_tasks", "get_task", "get_next_task", "list_handoffs", "get_handoff"}
    assert widened == {"get_next_available_id", "reserve_id_range"}  # a header never adds what the process left out


def test_a_read_only_header_refuses_writes_and_the_claim(handoffs_bridge: str, http: responses.RequestsMock) -> None:
    http.get(f"{URL}/tasks/next", json={"task": task_json()})
    headers = {"X-MCP-Readonly": "true"}

    delete: CallToolResult = over_http(handoffs_bridge, headers, "delete_task", task_id="TASK-051")
    claim: CallToolResult = over_http(handoffs_bridge, headers, "get_next_task", project_id="p", claim=True, agent="a")
    read: CallToolResult = over_http(handoffs_bridge, headers, "get_next_task", project_id="p")

    assert delete.is_error and "read-only" in delete.content[0].text
    assert claim.is_error and "claim cannot be used" in claim.content[0].text
    assert not read.is_error and read.structured_content["task"]["key"] == "TASK-051"
    assert [c.request.method for c in http.calls] == ["GET"]


def test_a_malformed_header_is_refused_with_what_to_send(handoffs_bridge: str) -> None:
    result: CallToolResult = over_http(handoffs_bridge, {"X-MCP-Toolsets": "tasks,board"}, "list_tasks")

    assert result.is_error
    assert "X-MCP-Toolsets: unknown toolset board; choose from tasks, ids, handoffs, activity" in result.content[0].text
