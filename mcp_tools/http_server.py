"""``tracker-mcp --transport streamable-http``: one bridge process serving many users at ``/mcp``.

Each MCP client sends its own tracker API key (``Authorization: Bearer <key>``); the bridge
forwards it on every tracker request made for that client, so each user sees only their tenant.
The bridge does not judge keys, the tracker does: a wrong key answers each tool call with
"Task Tracking API error: 401 - Unauthorized", and a request with no key at all is refused with a
401 before it reaches the MCP layer.

The pieces are the SDK's own: its bearer backend authenticates the request and its session
manager binds each MCP session to the key that opened it (another key gets 404 for that session);
``get_access_token()`` is the caller's key inside a tool. ``AuthSettings`` is not used on purpose:
it would advertise an OAuth authorization server, and there is none (keys are made with
``tracker keys create``). DNS-rebinding protection (Host and Origin checks) is always on. A key's
sessions end when the tracker revokes it (``revocation``).

One server serves every client, so a client chooses its tools per request, with the
``X-MCP-Toolsets`` and ``X-MCP-Readonly`` headers (``gate``), within what ``--toolsets`` and
``--read-only`` offer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import DEFAULT_SESSION_IDLE_TIMEOUT
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .client import TrackerClient, build_session
from .config import WILDCARD_HOSTS, Config
from .errors import Unauthorized
from .oauth import ACCESS_PREFIX, ProtectedResource, TokenCheck
from .revocation import KeyWatches, SdkSessions, WatchSessions, key_digest
from .server import build_server
from .updates import KeyBuses, PerKeyBus, ResourceSubscriptions

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/health"
#: Host names that always reach only this machine: a rebinding attack carries the attacker's name.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Tools run in anyio's worker threads (40 by default); a pool as large keeps their connections.
POOL_SIZE = 40
KEY_HINT = (
    "Send your tracker API key as 'Authorization: Bearer <key>' (make one with `tracker keys create`), "
    "or connect with OAuth (the resource_metadata URL)"
)
WELL_KNOWN = "/.well-known/"


class ForwardedKey:
    """``TokenVerifier`` that accepts any non-empty API key: the tracker decides, per request; an
    OAuth access token must also be bound to this bridge (``oauth.TokenCheck``).

    ``client_id`` is the credential's SHA-256, so the SDK's session binding compares keys without
    storing or logging them.
    """

    def __init__(self, tokens: TokenCheck | None = None) -> None:
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        token = token.strip()
        if not token:
            return None
        if self.tokens is not None and token.startswith(ACCESS_PREFIX):
            return await self.tokens.verify(token, key_digest(token))
        return AccessToken(token=token, client_id=key_digest(token), scopes=[])


def request_key() -> str:
    """The API key of the client whose tool call is running.

    Never falls back to another key: without one (which ``KeyRequired`` rules out) the call fails.
    """
    access = get_access_token()
    if access is None:
        raise Unauthorized(f"Task Tracking API error: 401 - Unauthorized (no API key on this request). {KEY_HINT}", 401)
    return access.token


class KeyRequired:
    """ASGI middleware: 401 for any request without a valid credential, except the health check and
    the resource's OAuth metadata; the challenge names that metadata (RFC 9728 section 5.1)."""

    def __init__(self, app: ASGIApp, resource: ProtectedResource) -> None:
        self.app = app
        self.resource = resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] == HEALTH_PATH
            or scope["path"].startswith(WELL_KNOWN)
            or isinstance(scope.get("user"), AuthenticatedUser)
        ):
            await self.app(scope, receive, send)
            return
        challenge = self.resource.challenge(KEY_HINT)
        response = JSONResponse(
            {"error": "invalid_token", "error_description": KEY_HINT},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)


def transport_security(config: Config) -> TransportSecuritySettings:
    """Host and Origin allow-lists: loopback names, the bound address, and the named hosts.

    A name given without a port is accepted on any port. The SDK only turns the protection on by
    itself for loopback binds; here it is on for every bind.
    """
    hosts: list[str] = []
    origins: list[str] = []
    for name in allowed_names(config):
        patterns = [name] if _has_port(name) else [name, f"{name}:*"]
        hosts += patterns
        origins += [f"{scheme}://{pattern}" for pattern in patterns for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def allowed_names(config: Config) -> list[str]:
    names = [*LOOPBACK_HOSTS]
    if config.host not in WILDCARD_HOSTS:
        names.append(_bracketed(config.host))
    names += [_bracketed(name) for name in config.allowed_hosts]
    return list(dict.fromkeys(names))


def build_app(
    server: MCPServer, config: Config, *, session_idle_timeout: float | None = DEFAULT_SESSION_IDLE_TIMEOUT
) -> Starlette:
    """The ASGI app: MCP at ``/mcp`` behind the key check, ``/health`` open.

    ``session_idle_timeout`` is the SDK's (30 min); tests shorten it.
    """

    @server.custom_route(HEALTH_PATH, methods=["GET"])
    async def health(request: Request) -> Response:
        # The bridge's own liveness, for a container healthcheck: a tracker outage is reported by
        # each tool call, and restarting the bridge would not fix it.
        return JSONResponse({"status": "ok"})

    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=config.host,
        transport_security=transport_security(config),
        session_idle_timeout=session_idle_timeout,
    )
    resource = ProtectedResource(config.resource_url, config.authorization_server)
    app.router.routes.extend(resource.routes())
    watches = KeyWatches(SdkSessions(server.session_manager), config.base_url, config.timeout)
    _run_beside_sessions(app, watches)
    # add_middleware puts each one outside the previous: authenticate, then expose, then require,
    # then note which key opened which session.
    app.add_middleware(WatchSessions, watches=watches, path=MCP_PATH, wait=config.timeout)
    app.add_middleware(KeyRequired, resource=resource)
    app.add_middleware(AuthContextMiddleware)
    tokens = TokenCheck(resource, config.base_url, config.timeout)
    app.add_middleware(AuthenticationMiddleware, backend=BearerAuthBackend(ForwardedKey(tokens)))
    return app


def _run_beside_sessions(app: Starlette, watches: KeyWatches) -> None:
    """Run the key watches for as long as the SDK's session manager runs (the app's lifespan)."""
    sessions_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sessions_lifespan(app), watches.running():
            yield

    app.router.lifespan_context = lifespan


def serve(config: Config) -> None:
    """Serve until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    client = TrackerClient(config, session=build_session(pool_maxsize=POOL_SIZE), api_key=request_key)
    buses = KeyBuses(config, request_key)
    server = build_server(client, config.surface, PerKeyBus(buses), ResourceSubscriptions(buses))
    app = build_app(server, config)
    log.info(
        "serving tools for %s at http://%s:%d%s; keys come from each client's Authorization header "
        "(TASK_TRACKING_API_KEY is not used); toolsets %s (X-MCP-Toolsets and X-MCP-Readonly narrow them); "
        "allowed hosts: %s",
        config.base_url,
        _bracketed(config.host),
        config.port,
        MCP_PATH,
        config.surface,
        ", ".join(allowed_names(config)),
    )
    try:
        # log_config=None: uvicorn's own config would send access lines to stdout; ours go to stderr.
        uvicorn.run(app, host=config.host, port=config.port, log_config=None, access_log=False, server_header=False)
    finally:
        client.close()


def _bracketed(host: str) -> str:
    """An IPv6 literal as it appears in a Host header."""
    return f"[{host}]" if host.count(":") > 1 and not host.startswith("[") else host


def _has_port(name: str) -> bool:
    return ":" in name and name.rpartition(":")[2].isdigit() and (not name.startswith("[") or "]:" in name)
