"""Handoff tools (spec 000) and the ``tracker://handoffs/{id}`` resource (the raw markdown).

Reading a handoff is one tool, ``get_handoff``, which returns the content with its metadata;
lists carry summaries only, so a page of handoffs never floods the context.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from ..client import TrackerClient
from ..models import Handoff, HandoffPage, HandoffReceipt
from .common import CREATE, READ, UPDATE, Limit, Offset, ProjectFilter, ProjectId, Since, tool

Direction = Literal["cc_to_ai", "ai_to_cc"]
HandoffStatus = Literal["pending", "read", "processed", "archived"]
HandoffId = Annotated[str, Field(min_length=1, description="Handoff UUID.")]
Sender = Annotated[str | None, Field(description="Sending agent, e.g. 'cc'.")]
Recipient = Annotated[str | None, Field(description="Receiving agent, e.g. 'claude_ai'.")]


def register(server: MCPServer, client: TrackerClient) -> None:
    @tool(server, CREATE)
    def create_handoff(
        project_id: ProjectId,
        task: Annotated[str, Field(min_length=1, max_length=200, description="Topic slug, e.g. 'sprint3-status'.")],
        content: Annotated[str, Field(min_length=1, description="The handoff, markdown.")],
        direction: Annotated[Direction | None, Field(description="Or give from_agent/to_agent.")] = None,
        from_agent: Sender = None,
        to_agent: Recipient = None,
        response_to: Annotated[str | None, Field(description="UUID of the handoff this answers.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Extra JSON fields.")] = None,
    ) -> HandoffReceipt:
        """Post a markdown handoff for another agent; returns its id and a public_url readable without a key."""
        handoff = {
            "project": project_id,
            "task": task,
            "content": content,
            "direction": direction,
            "from_agent": from_agent,
            "to_agent": to_agent,
            "response_to": response_to,
            "metadata": metadata,
        }
        return client.create_handoff({k: v for k, v in handoff.items() if v is not None})

    @tool(server, READ)
    def list_handoffs(
        project_id: ProjectFilter = None,
        status: Annotated[HandoffStatus | None, Field(description="Only handoffs in this status.")] = None,
        direction: Annotated[Direction | None, Field(description="Only this direction.")] = None,
        to_agent: Annotated[str | None, Field(description="Only handoffs addressed to this agent.")] = None,
        since: Since = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> HandoffPage:
        """List handoff summaries (no content), newest first; e.g. status='pending' and to_agent=you."""
        return client.list_handoffs(
            limit, offset, project=project_id, status=status, direction=direction, to_agent=to_agent, since=since
        )

    @tool(server, READ)
    def get_handoff(handoff_id: HandoffId) -> Handoff:
        """Return one handoff with its markdown content."""
        return client.get_handoff(handoff_id)

    @tool(server, UPDATE)
    def update_handoff_status(
        handoff_id: HandoffId, status: Annotated[HandoffStatus, Field(description="New status.")]
    ) -> HandoffReceipt:
        """Move a handoff along pending -> read -> processed -> archived."""
        return client.set_handoff_status(handoff_id, status)

    @server.resource("tracker://handoffs/{id}", mime_type="text/markdown", description="A handoff's markdown.")
    def handoff_resource(id: str) -> str:
        return client.handoff_markdown(id)
