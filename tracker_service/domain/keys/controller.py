"""Who the caller is, and a stream that ends when the caller's key is revoked.

The MCP bridge holds one `/whoami/watch` stream per key with open sessions and closes those
sessions when the stream says `revoked`, so a revocation reaches them within about a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, get
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from tracker_service.domain.common import OutModel
from tracker_service.domain.events.stream import HEARTBEAT_SECONDS, revoked_message
from tracker_service.domain.keys.service import KeyRevoked, Principal, wait_while_valid


class WhoAmI(OutModel):
    tenant: str
    name: str
    role: str
    key_id: str
    # For an OAuth access token: the client it was issued to, the resource (RFC 8707) it is bound to
    # (the MCP bridge checks it is its own), and when it expires (epoch seconds).
    oauth_client: str | None = None
    resource: str | None = None
    expires_at: int | None = None


class WhoAmIController(Controller):
    path = "/whoami"
    tags = ["keys"]

    @get("/")
    async def whoami(self, request: Request) -> WhoAmI:
        """The tenant, name and role of the credential sent; an OAuth token also gives its client,
        resource and expiry."""
        principal: Principal = request.scope["state"]["principal"]
        return WhoAmI(
            tenant=principal.tenant,
            name=principal.name,
            role=principal.role,
            key_id=principal.key_id,
            oauth_client=principal.oauth_client,
            resource=principal.oauth_resource,
            expires_at=int(principal.expires_at) if principal.expires_at is not None else None,
        )

    @get("/watch", opt={"own_connection": True})
    async def watch_key(self, request: Request) -> ServerSentEvent:
        """Server-Sent Events: a keep-alive comment every 15 s; an `revoked` event, then the end, when the key
        is revoked."""
        state: Any = request.app.state
        return ServerSentEvent(
            _watch(state.engine, state.hub, request.scope["state"]["principal"]),
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


async def _watch(engine: Any, hub: Any, principal: Principal) -> AsyncIterator[ServerSentEventMessage]:
    with hub.subscribe(principal.tenant) as sub:
        yield ServerSentEventMessage(comment="watching", data=None)
        try:
            while True:
                if not await wait_while_valid(sub, hub, engine, principal, HEARTBEAT_SECONDS):
                    yield ServerSentEventMessage(comment="keep-alive", data=None)
        except KeyRevoked as exc:
            yield revoked_message(exc)
