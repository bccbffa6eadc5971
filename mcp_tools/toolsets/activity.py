"""The activity log (spec 000) and delegation (spec 004)."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from ..client import DEFAULT_SYNC_WAIT, TrackerClient
from ..models import Delegation, LogPage
from .common import CREATE, READ, Limit, ProjectFilter, Since, tool


def register(server: MCPServer, client: TrackerClient) -> None:
    @tool(server, READ)
    def get_log(
        project_id: ProjectFilter = None,
        type: Annotated[
            str | None, Field(description="task, id, handoff or key; or one event, e.g. task.created.")
        ] = None,
        since: Since = None,
        limit: Limit = 50,
    ) -> LogPage:
        """Recent activity on tasks and handoffs, newest first: what changed, when, by whom."""
        return client.log(limit, project=project_id, type=type, since=since)

    @tool(server, CREATE)
    def delegate_task(
        prompt: Annotated[str, Field(min_length=1, description="The work to do, self-contained.")],
        type: Annotated[Literal["code", "general"], Field(description="Kind of work.")] = "general",
        priority: Annotated[int, Field(ge=1, le=10, description="1 (low) to 10 (urgent).")] = 5,
        files: Annotated[list[str] | None, Field(description="Paths the work concerns.")] = None,
        sync: Annotated[bool, Field(description="Wait for the result (up to options.timeout, default 120 s).")] = False,
        options: Annotated[dict[str, Any] | None, Field(description="e.g. timeout (s), project, model.")] = None,
    ) -> Delegation:
        """Hand work to a worker agent; returns its task_id (get_task follows it), with sync=true its result."""
        request = {"type": type, "prompt": prompt, "priority": priority, "sync": sync, "files": files or []}
        options = dict(options or {})
        if sync:
            # Say how long to wait, so the tracker and this bridge's HTTP timeout agree.
            options.setdefault("timeout", DEFAULT_SYNC_WAIT)
        if options:
            request["options"] = options
        return client.delegate(request)
