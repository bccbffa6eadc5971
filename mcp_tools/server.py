"""Assemble the MCP server: one client, the tools and resources of the chosen surface."""

from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import SubscriptionBus

from .client import TrackerClient
from .config import Surface
from .gate import SurfaceGate
from .guidance import instructions, register_prompts
from .toolsets import activity, handoffs, ids, tasks
from .toolsets.common import Catalogue
from .updates import ResourceSubscriptions


def catalogue(client: TrackerClient) -> Catalogue:
    """Every toolset's tools and resources, built once per server."""
    tools = Catalogue()
    for toolset in (tasks, ids, handoffs, activity):
        toolset.register(tools, client)
    return tools


def build_server(
    client: TrackerClient,
    surface: Surface | None = None,
    updates: SubscriptionBus | None = None,
    subscriptions: ResourceSubscriptions | None = None,
) -> MCPServer:
    """The server offering ``surface``; over HTTP a client's headers may narrow it (``gate``).

    ``updates`` feeds ``subscriptions/listen`` (resource updates; stdio: ``updates.TrackerUpdates``,
    HTTP: ``updates.PerKeyBus``);
    without it the server does not offer listening. ``subscriptions`` serves ``resources/subscribe``
    (the older protocols' way; over stdio from the same bus, over HTTP from a bus per key).
    """
    surface = surface or Surface()
    tools = catalogue(client)
    server = MCPServer(
        "tracker",
        subscriptions=updates if updates is not None else False,
        instructions=instructions(surface),
        version=_version(),
        tools=tools.select(surface),
        middleware=[SurfaceGate(tools, surface)],
    )
    for toolset, add in tools.resources:
        if toolset in surface.toolsets:
            add(server)
    register_prompts(server, surface)
    if subscriptions is not None:
        subscriptions.register(server)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agent-tracker")
    except PackageNotFoundError:
        return "0"
