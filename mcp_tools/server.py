"""Assemble the MCP server: one client, every toolset registered against it."""

from mcp.server.mcpserver import MCPServer

from .client import TrackerClient
from .toolsets import activity, handoffs, ids, tasks

INSTRUCTIONS = """\
Shared task tracker for agents. Typical loop: get_next_task(project_id, claim=true, agent=<you>),
do the work, then update_task_status(task_id, "completed", completion_notes). Allocate artifact IDs
with get_next_available_id / reserve_id_range, never by guessing. Lists return summaries; fetch
one item with get_task / get_handoff."""


def build_server(client: TrackerClient) -> MCPServer:
    server = MCPServer("tracker", instructions=INSTRUCTIONS, version=_version())
    for toolset in (tasks, ids, handoffs, activity):
        toolset.register(server, client)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agent-tracker")
    except PackageNotFoundError:
        return "0"
