"""The tracker as an OAuth 2.1 authorization server for MCP clients (Claude.ai, ChatGPT, Claude Code).

The protocol endpoints are the MCP SDK's own handlers (``mcp.server.auth.routes``), served by
Litestar as ASGI routes: ``/.well-known/oauth-authorization-server`` (RFC 8414), ``/authorize``
(code flow, PKCE S256 only), ``/token`` (code and refresh grants), ``/register`` (RFC 7591) and
``/revoke`` (RFC 7009). The one page of our own is the consent page, where a person signs in (the
board's session, or a key pasted there) and approves a role no higher than the key's. Tokens then
act as that key (``store.principal_of_token``): same tenant, that role, and they die with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Controller, Request, asgi, get, post
from litestar.handlers import ASGIRouteHandler
from litestar.response import Redirect, Response
from litestar.types import Receive, Scope, Send
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.provider import construct_redirect_uri
from mcp.server.auth.routes import build_metadata, cors_middleware, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl, ConfigDict, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Route

from tracker_service.board.routes import BOARD_HEADERS, CSP, render, same_origin
from tracker_service.domain.keys.service import ROLES, Principal, authenticate
from tracker_service.domain.keys.sessions import find_session, session_token_from
from tracker_service.domain.oauth.documents import LOOPBACK, ClientDocuments
from tracker_service.domain.oauth.store import CONSENT_PATH, ConsentRequest, OAuthPolicy, TrackerAuthorizationProvider
from tracker_service.errors import RateLimited
from tracker_service.settings import Settings

METADATA_PATH = "/.well-known/oauth-authorization-server"
ENDED = "This authorization request has expired or was already answered; connect again from your client."


def oauth_provider(engine: AsyncEngine, settings: Settings) -> TrackerAuthorizationProvider:
    issuer = settings.base_url
    policy = OAuthPolicy(
        issuer=issuer,
        access_lifetime=timedelta(minutes=settings.oauth_access_minutes),
        refresh_lifetime=timedelta(days=settings.oauth_refresh_days),
        resources=tuple(r.strip() for r in (settings.oauth_resources or "").split(",") if r.strip()),
    )
    documents = ClientDocuments(settings.oauth_client_documents, urlsplit(issuer).hostname in LOOPBACK)
    return TrackerAuthorizationProvider(engine, policy, documents)


def oauth_handlers(provider: TrackerAuthorizationProvider) -> list[Any]:
    """The SDK's protocol routes as Litestar ASGI routes (each checks its own methods), and consent."""
    # RFC 8414: the issuer is the very URL clients were told, so no trailing slash is added.
    issuer = TypeAdapter(AnyHttpUrl, config=ConfigDict(url_preserve_empty_path=True)).validate_python(
        provider.policy.issuer
    )
    registration = ClientRegistrationOptions(enabled=True, valid_scopes=list(ROLES), default_scopes=["write"])
    revocation = RevocationOptions(enabled=True)
    routes = create_auth_routes(
        provider, issuer, client_registration_options=registration, revocation_options=revocation
    )
    # The SDK's metadata, plus what this server also does: public clients (PKCE, no secret) and
    # client ID metadata documents (documents.py).
    metadata = build_metadata(issuer, None, registration, revocation)
    metadata.token_endpoint_auth_methods_supported = ["none", "client_secret_post", "client_secret_basic"]
    metadata.client_id_metadata_document_supported = provider.documents.enabled or None
    described = Route(METADATA_PATH, cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"]))
    mounted = [described if r.path == METADATA_PATH else r for r in routes if isinstance(r, Route)]
    return [_mounted(route) for route in mounted] + [ConsentController]


def _mounted(route: Route) -> ASGIRouteHandler:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        await route.handle(scope, receive, send)  # type: ignore[arg-type]

    handle.__name__ = f"oauth_{route.path.strip('/').replace('/', '_').replace('.', '_').replace('-', '_')}"
    return asgi(route.path, opt={"public": True}, include_in_schema=False, copy_scope=False)(handle)


class ConsentController(Controller):
    """The consent page: public (RequestContext skips it); it checks its own sign-in."""

    path = CONSENT_PATH
    include_in_schema = False
    opt = {"public": True}

    @get("/")
    async def consent_form(self, request: Request) -> Response[str]:
        request_id = request.query_params.get("request", "")
        provider: TrackerAuthorizationProvider = request.app.state.oauth_provider
        async with request.app.state.engine.connect() as conn:
            pending = await provider.consent_request(conn, request_id)
            session = await _session(conn, request)
        if pending is None:
            return _page(request, None, 400, error=ENDED)
        return _page(request, pending, 200, request_id=request_id, session=session)

    @post("/", status_code=303)
    async def consent_decision(self, request: Request) -> Response[Any]:
        state: Any = request.app.state
        provider: TrackerAuthorizationProvider = state.oauth_provider
        form = await request.form()
        request_id = str(form.get("request") or "")
        async with state.engine.begin() as conn:
            pending = await provider.consent_request(conn, request_id)
            if pending is None:
                return _page(request, None, 400, error=ENDED)
            if not same_origin(request):
                return _page(request, pending, 403, request_id=request_id, error="approve from this tracker's own page")
            params = pending.params
            if form.get("decision") != "approve":
                await provider.deny(conn, request_id)
                denied = construct_redirect_uri(str(params.redirect_uri), error="access_denied", state=params.state)
                return Redirect(denied, status_code=303, headers={"Cache-Control": "no-store"})
            session = await _session(conn, request)
            try:
                principal = await _signer(conn, request, form, session)
            except RateLimited as exc:
                return _page(request, pending, 429, request_id=request_id, session=session, error=exc.detail)
            if principal is None:
                return _page(
                    request, pending, 401, request_id=request_id, session=session, error="invalid or revoked key"
                )
            role = str(form.get("role") or "")
            if role not in ROLES or not principal.allows(role):
                return _page(
                    request,
                    pending,
                    403,
                    request_id=request_id,
                    session=session,
                    error=f"the key {principal.name!r} has role {principal.role}; grant {principal.role} or less",
                )
            code = await provider.approve(conn, request_id, principal, role)
        if code is None:
            return _page(request, None, 400, error=ENDED)
        approved = construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)
        return Redirect(approved, status_code=303, headers={"Cache-Control": "no-store"})


async def _session(conn: Any, request: Request) -> Any:
    token = session_token_from(request.headers.get("cookie"))
    return await find_session(conn, token) if token else None


async def _signer(conn: Any, request: Request, form: Any, session: Any) -> Principal | None:
    """Who approves: the key pasted in the form (counted against the address's failure limit), else
    the board session whose CSRF token the form carries."""
    key = str(form.get("key") or "").strip()
    failed_auth = request.app.state.failed_auth
    address = (request.client.host if request.client else "unknown") or "unknown"
    if key:
        failed_auth.refuse_if_empty(address)
        principal = await authenticate(conn, key)
        if principal is None:
            failed_auth.check(address)
        return principal
    if session is None:
        return None
    session.check_csrf(str(form.get("csrf_token") or ""))
    return session.principal


def _page(
    request: Request,
    pending: ConsentRequest | None,
    status_code: int,
    *,
    request_id: str = "",
    session: Any = None,
    error: str | None = None,
) -> Response[str]:
    context: dict[str, Any] = {"pending": pending is not None, "error": error}
    headers = dict(BOARD_HEADERS)
    if pending is not None:
        client, params = pending.client, pending.params
        redirect = urlsplit(str(params.redirect_uri))
        signed_in = session.principal if session is not None else None
        ceiling = signed_in.role if signed_in is not None else ROLES[-1]
        roles = list(ROLES[: ROLES.index(ceiling) + 1])
        requested = [s for s in (params.scopes or []) if s in ROLES]
        default = max(requested, key=ROLES.index) if requested else "write"
        context.update(
            client_name=client.client_name or client.client_id,
            resource=params.resource,
            redirect_host=redirect.netloc or f"{redirect.scheme}:",
            request_id=request_id,
            signed_in=signed_in,
            session_csrf=session.csrf_token if session is not None else "",
            roles=roles,
            default_role=default if default in roles else roles[-1],
            self_url=f"{CONSENT_PATH}?{urlencode({'request': request_id})}",
        )
        # The approval redirects to the client: form-action must allow that target, or the browser
        # stops the redirect (CSP applies form-action to a form's redirects).
        target = f"{redirect.scheme}://{redirect.netloc}" if redirect.netloc else f"{redirect.scheme}:"
        headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {target}")
    response = render(request, "consent.html", status_code=status_code, title="Connect a client", **context)
    response.headers.update(headers)
    return response
