"""Handoff tools (spec 000) and the ``tracker://handoffs/{id}`` resource (the raw markdown).

Reading a handoff is one tool, ``get_handoff``, which returns the content with its metadata;
lists carry summaries only, so a page of handoffs never floods the context.
"""

from typing import Annotated, Any, Literal

from pydantic import Field

from .. import paging
from ..client import TrackerClient
from ..models import Handoff, HandoffPage, HandoffReceipt, HandoffState
from .common import CREATE, READ, UPDATE, AnyOf, Catalogue, Cursor, Filter, Limit, ProjectId, Since

TOOLSET = "handoffs"

Direction = Literal["cc_to_ai", "ai_to_cc"]
HandoffStatus = Literal["pending", "read", "processed", "archived"]
HandoffId = Annotated[str, Field(min_length=1)]


def register(tools: Catalogue, client: TrackerClient) -> None:
    @tools.tool(TOOLSET, CREATE)
    def create_handoff(
        project_id: ProjectId,
        task: Annotated[str, Field(min_length=1, max_length=200, description="Topic slug.")],
        content: Annotated[str, Field(min_length=1)],
        direction: Annotated[Direction | None, Field(description="Or from_agent/to_agent.")] = None,
        from_agent: str | None = None,
        to_agent: Annotated[str | None, Field(description="Recipient, e.g. claude_ai.")] = None,
        response_to: Annotated[str | None, Field(description="UUID of the handoff answered.")] = None,
        metadata: dict[str, Any] | None = None,
    ) -> HandoffReceipt:
        """Post a markdown handoff for another agent; public_url reads it without a key."""
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

    @tools.tool(TOOLSET, READ)
    def list_handoffs(
        project_id: Filter = None,
        status: AnyOf = None,
        direction: AnyOf = None,
        to_agent: Filter = None,
        since: Since = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> HandoffPage:
        """Handoff summaries, newest first; get_handoff has the content."""
        offset, query, _ = paging.resume(
            cursor, project=project_id, status=status, direction=direction, to_agent=to_agent, since=since
        )
        listing = client.list_handoffs(limit, offset, **query)
        items, next_cursor = paging.cut(listing.items, offset, listing.more, query)
        return HandoffPage(handoffs=items, total=listing.total, next_cursor=next_cursor)

    @tools.tool(TOOLSET, READ)
    def get_handoff(handoff_id: HandoffId, cursor: Cursor = None) -> Handoff:
        """One handoff with its markdown; a long one comes in pieces (next_cursor)."""
        start, _, _ = paging.resume(cursor, id=handoff_id)
        handoff = client.get_handoff(handoff_id)
        content = handoff.content
        room = paging.ANSWER_BUDGET - len(handoff.model_copy(update={"content": ""}).model_dump_json()) - 100
        if start == 0 and len(content) <= room:
            return handoff
        piece = paging.text_piece(content, min(start, len(content)), max(room, 1_000))
        end = start + len(piece)
        next_cursor = paging.encode_cursor(end, {"id": handoff_id}) if end < len(content) else None
        return handoff.model_copy(update={"content": piece, "next_cursor": next_cursor})

    @tools.tool(TOOLSET, UPDATE)
    def update_handoff_status(handoff_id: HandoffId, status: HandoffStatus) -> HandoffState:
        """Move a handoff: pending, read, processed, archived."""
        return HandoffState.of(client.set_handoff_status(handoff_id, status))

    @tools.resource(TOOLSET, "tracker://handoffs/{id}", mime_type="text/markdown", description="A handoff's markdown.")
    def handoff_resource(id: str) -> str:
        return client.handoff_markdown(id)
