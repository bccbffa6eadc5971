"""Assemble the MCP server: one client, the tools and resources of the chosen surface."""

from mcp.server.mcpserver import MCPServer

from .client import TrackerClient
from .config import Surface
from .gate import SurfaceGate
from .toolsets import activity, handoffs, ids, tasks
from .toolsets.common import Catalogue

INSTRUCTIONS = """\
Shared task tracker for agents. Typical loop: get_next_task(project_id, claim=true, agent=<you>),
do the work, then update_task_status(task_id, "completed", completion_notes). Allocate artifact IDs
with get_next_available_id / reserve_id_range, never by guessing. Lists return summaries; fetch
one item with get_task / get_handoff."""


def catalogue(client: TrackerClient) -> Catalogue:
    """Every toolset's tools and resources, built once per server."""
    tools = Catalogue()
    for toolset in (tasks, ids, handoffs, activity):
        toolset.register(tools, client)
    return tools


def build_server(client: TrackerClient, surface: Surface | None = None) -> MCPServer:
    """The server offering ``surface``; over HTTP a client's headers may narrow it (``gate``)."""
    surface = surface or Surface()
    tools = catalogue(client)
    server = MCPServer(
        "tracker",
        instructions=INSTRUCTIONS,
        version=_version(),
        tools=tools.select(surface),
        middleware=[SurfaceGate(tools, surface)],
    )
    for toolset, add in tools.resources:
        if toolset in surface.toolsets:
            add(server)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agent-tracker")
    except PackageNotFoundError:
        return "0"
