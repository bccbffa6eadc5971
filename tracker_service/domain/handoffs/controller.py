from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

from tracker_service.domain.handoffs.schemas import (
    HANDOFF_STATUSES,
    HandoffIn,
    HandoffOut,
    HandoffPage,
    HandoffStatusIn,
    ThreadOut,
)
from tracker_service.domain.handoffs.service import HandoffService, public_content
from tracker_service.errors import HandoffNotFound
from tracker_service.web.deps import one_of, page_limit, parse_uuid, provide_handoffs, uuid_or_none
from tracker_service.web.params import Limit, Offset, ProjectIdQuery, ProjectQuery, TextQuery, choices_query, uuid_path

DIRECTIONS = ("cc_to_ai", "ai_to_cc")
Since = Annotated[datetime | None, QueryParameter(description="Only handoffs created at or after this time")]
DirectionQuery = Annotated[str | None, choices_query(tuple(DIRECTIONS), "Direction")]
StatusQuery = Annotated[str | None, choices_query(HANDOFF_STATUSES, "Status")]
HandoffId = Annotated[str, uuid_path("The handoff's id")]


class HandoffController(Controller):
    path = "/handoffs"
    tags = ["handoffs"]
    dependencies = {"handoff_service": Provide(provide_handoffs, sync_to_thread=False)}

    @post("/")
    async def create_handoff(
        self, handoff_service: NamedDependency[HandoffService], data: JSONBody[HandoffIn]
    ) -> HandoffOut:
        """Leave a markdown message for another agent; public_url serves it without a key."""
        return await handoff_service.create(data)

    @get("/")
    async def list_handoffs(
        self,
        request: Request,
        handoff_service: NamedDependency[HandoffService],
        project: ProjectQuery = None,
        project_id: ProjectIdQuery = None,
        status: StatusQuery = None,
        direction: DirectionQuery = None,
        to_agent: TextQuery = None,
        from_agent: TextQuery = None,
        since: Since = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> HandoffPage:
        """Handoff summaries, newest first (content is not included: fetch one handoff for it)."""
        directions = one_of("direction", direction, DIRECTIONS)
        return await handoff_service.list(
            project=project or project_id,
            statuses=one_of("status", status, HANDOFF_STATUSES),
            directions=directions,
            to_agent=to_agent,
            from_agent=from_agent,
            since=since,
            limit=page_limit(request, limit),
            offset=offset,
        )

    @get("/{handoff_id:str}")
    async def get_handoff(self, handoff_service: NamedDependency[HandoffService], handoff_id: HandoffId) -> HandoffOut:
        return await handoff_service.get(parse_uuid("handoff_id", handoff_id))

    @patch("/{handoff_id:str}")
    async def update_handoff_status(
        self,
        handoff_service: NamedDependency[HandoffService],
        handoff_id: HandoffId,
        data: JSONBody[HandoffStatusIn],
    ) -> HandoffOut:
        """Move a handoff forward: pending -> read -> processed -> archived."""
        return await handoff_service.set_status(parse_uuid("handoff_id", handoff_id), data.status)

    @get("/{handoff_id:str}/thread")
    async def handoff_thread(
        self, handoff_service: NamedDependency[HandoffService], handoff_id: HandoffId
    ) -> ThreadOut:
        """The whole conversation this handoff belongs to, oldest first."""
        return await handoff_service.thread(parse_uuid("handoff_id", handoff_id))

    @get("/{handoff_id:str}/content", opt={"public": True}, media_type="text/markdown", security=[])
    async def handoff_content(self, request: Request, handoff_id: HandoffId) -> Response[str]:
        """The handoff's markdown, without a key (for web agents); 404 when unknown or expired."""
        if not request.app.state.settings.public_content:
            raise HandoffNotFound("public handoff content is turned off on this tracker")
        content = None
        if (uid := uuid_or_none(handoff_id)) is not None:
            async with request.app.state.engine.connect() as conn:
                content = await public_content(conn, uid)
        if content is None:
            # One answer for unknown, expired and other tenants' ids: no hint that an id exists.
            raise HandoffNotFound(f"handoff {handoff_id} not found")
        return Response(
            content,
            media_type="text/markdown",  # Litestar adds "; charset=utf-8" to text/* types
            headers={"X-Robots-Tag": "noindex", "Cache-Control": "no-store"},
        )
