"""The HTTP bridge as an OAuth 2.1 protected resource (RFC 9728), for clients that cannot send a key.

Claude.ai's and ChatGPT's connectors, and Claude Code without a header, reach ``/mcp`` with no
credential, get a 401 whose ``WWW-Authenticate`` names this resource's metadata
(``/.well-known/oauth-protected-resource/mcp``), read there that the tracker is the authorization
server, and come back with an access token the person approved on the tracker's consent page.

The bridge checks such a token with the tracker (``GET /whoami``): it must be live and bound
(RFC 8707) to this bridge's own URL, or the request gets the same 401. An answer is remembered for
a few seconds so a session's stream of requests costs one check; the tracker still checks the
token on every tool call, so a revocation takes effect there at once. API keys pass as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx2
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from pydantic import AnyHttpUrl, ConfigDict, TypeAdapter
from starlette.routing import Route

from .client import USER_AGENT

ACCESS_PREFIX = "trk_oat_"
SCOPES = ["read", "write", "admin"]
REMEMBER_SECONDS = 10.0
MAX_REMEMBERED = 10_000
_URL = TypeAdapter(AnyHttpUrl, config=ConfigDict(url_preserve_empty_path=True))


@dataclass(frozen=True)
class ProtectedResource:
    resource: str  # this bridge's MCP endpoint as clients reach it
    authorization_server: str  # the tracker as browsers and clients reach it

    @property
    def metadata_url(self) -> str:
        return str(build_resource_metadata_url(_URL.validate_python(self.resource)))

    def routes(self) -> list[Route]:
        """RFC 9728 metadata at the path-specific well-known URL, and at the root one for clients
        that look there first."""
        routes = create_protected_resource_routes(
            _URL.validate_python(self.resource),
            [_URL.validate_python(self.authorization_server)],
            scopes_supported=SCOPES,
            resource_name="Agent Tracker",
        )
        root = "/.well-known/oauth-protected-resource"
        if routes and routes[0].path != root:
            routes.append(Route(root, endpoint=routes[0].endpoint, methods=["GET", "OPTIONS"]))
        return routes

    def challenge(self, description: str) -> str:
        return (
            f'Bearer error="invalid_token", error_description="{description}", resource_metadata="{self.metadata_url}"'
        )


class TokenCheck:
    """Whether an OAuth access token is live and meant for this bridge, asked of the tracker."""

    def __init__(self, resource: ProtectedResource, base_url: str, timeout: float) -> None:
        self.resource = resource
        self.base_url = base_url
        self.timeout = timeout
        self._known: dict[str, tuple[float, AccessToken | None]] = {}

    async def verify(self, token: str, client_id: str) -> AccessToken | None:
        now = time.monotonic()
        known = self._known.get(client_id)
        if known is not None and known[0] > now:
            return known[1]
        access = await self._ask(token, client_id)
        if len(self._known) >= MAX_REMEMBERED:
            self._known = {k: v for k, v in self._known.items() if v[0] > now}
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
        self._known[client_id] = (now + REMEMBER_SECONDS, access)
        return access

    async def _ask(self, token: str, client_id: str) -> AccessToken | None:
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        async with httpx2.AsyncClient(timeout=self.timeout) as http:
            try:
                response = await http.get(f"{self.base_url}/whoami", headers=headers)
            except httpx2.HTTPError:
                return None  # the tracker is unreachable: no tool could run anyway
        if response.status_code != 200:
            return None
        who = response.json()
        if _same_resource(who.get("resource"), self.resource.resource):
            return AccessToken(
                token=token,
                client_id=client_id,
                scopes=[who["role"]],
                expires_at=who.get("expires_at"),
                resource=self.resource.resource,
            )
        return None


def _same_resource(granted: str | None, ours: str) -> bool:
    return granted is not None and granted.rstrip("/") == ours.rstrip("/")
