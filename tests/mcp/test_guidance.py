"""Instructions and prompts: under the length clients keep, naming only tools the surface offers."""

from __future__ import annotations

import itertools
import re
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_tools.client import TrackerClient
from mcp_tools.config import TOOLSETS, Config, Surface
from mcp_tools.guidance import CONVENTIONS, INSTRUCTIONS_LIMIT
from mcp_tools.server import build_server, catalogue

from .bridge_support import API_KEY

EVERY_TOOL = {tool.name for tool in catalogue(TrackerClient(Config(api_key=API_KEY))).select(Surface())}

SURFACES = [
    Surface(frozenset(chosen), read_only)
    for size in range(1, len(TOOLSETS) + 1)
    for chosen in itertools.combinations(sorted(TOOLSETS), size)
    for read_only in (False, True)
]


def session(surface: Surface) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Client(build_server(TrackerClient(Config(api_key=API_KEY)), surface)) as mcp:
            listed = (await mcp.list_tools()).tools
            tools = {t.name for t in listed}
            params = {name for t in listed for name, prop in parameters(t.input_schema) if "description" not in prop}
            prompts = {p.name: p for p in (await mcp.list_prompts()).prompts}
            texts = {}
            for name, prompt in prompts.items():
                args = {a.name: f"<{a.name}>" for a in prompt.arguments or []}
                result = await mcp.get_prompt(name, args)
                texts[name] = " ".join(m.content.text for m in result.messages if m.content.type == "text")
            return {"instructions": mcp.instructions, "tools": tools, "prompts": texts, "undescribed": params}

    return anyio.run(go)


def parameters(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every parameter of an input schema, those of the models it nests ($defs) too."""
    models = [schema, *schema.get("$defs", {}).values()]
    return [(name, prop) for model in models for name, prop in model.get("properties", {}).items()]


def named_tools(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z_]+", text) if word in EVERY_TOOL}


@pytest.mark.parametrize(
    "surface", SURFACES, ids=lambda s: f"{'+'.join(sorted(s.toolsets))}{'-ro' if s.read_only else ''}"
)
def test_instructions_and_prompts_fit_and_name_only_offered_tools(surface: Surface) -> None:
    seen = session(surface)
    text = seen["instructions"]
    assert len(text) <= INSTRUCTIONS_LIMIT, len(text)
    assert named_tools(text) <= seen["tools"], named_tools(text) - seen["tools"]
    if surface.read_only:
        assert "claim=true" not in text and "update_task_status" not in text
    for name, prompt in seen["prompts"].items():
        assert named_tools(prompt) <= seen["tools"], (name, named_tools(prompt) - seen["tools"])
    # A parameter left undescribed because the instructions explain it: they must, on this surface.
    for name in seen["undescribed"] & set(CONVENTIONS):
        assert CONVENTIONS[name] in text, f"the instructions no longer explain {name}: {CONVENTIONS[name]!r}"


def test_the_full_surface_teaches_the_whole_workflow_and_offers_three_prompts() -> None:
    seen = session(Surface())
    for step in ("claim=true", "heartbeat_task", "in_review", "create_handoff", "get_next_available_id"):
        assert step in seen["instructions"], step
    assert set(seen["prompts"]) == {"start_next_task", "standup", "write_handoff"}
    start = seen["prompts"]["start_next_task"]
    assert "'<project>'" in start and "claim=true" in start and "'<agent>'" in start


def test_a_read_only_surface_offers_only_the_reading_prompt() -> None:
    assert set(session(Surface(read_only=True))["prompts"]) == {"standup"}
