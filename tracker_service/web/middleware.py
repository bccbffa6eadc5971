"""Per request: API key -> tenant, role, rate limit, then one database transaction.

Writes run in one transaction that is committed *before* the response leaves, so an
acknowledged write is durable and a failed commit is reported, never a 201 for nothing.
An Idempotency-Key is recorded inside that same transaction: the work and its record
commit together or not at all, and a concurrent repeat blocks on the record's primary key
until the first finishes, then replays its response.

A route whose whole write is one SQL statement says so (`opt=AUTOCOMMIT`, web.params);
without an Idempotency-Key its request runs in autocommit: the statement commits by itself
before the response is built, with no BEGIN/COMMIT round trips and row locks held only for
the statement (tests/service/test_single_statement.py keeps those routes at one statement).
A route whose statement also records the Idempotency-Key (`opt=AUTOCOMMIT_WITH_KEY_RECORD`: the
claim) runs in autocommit with a key too; the key goes to it as `keyed_request`. One that records
the key in its first statement but may need more (`opt=TRANSACTION_WITH_KEY_RECORD`: a status change)
runs in a transaction, with the key likewise handed to it rather than recorded here.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote_to_bytes

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPReceiveMessage, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracker_service.db.engine import request_connection
from tracker_service.domain.keys.jwt_users import JwtUsers, looks_like_jwt
from tracker_service.domain.keys.service import Principal, PrincipalCache, authenticate, hash_key
from tracker_service.domain.keys.sessions import CSRF_HEADER, BoardSession, find_session, session_token_from
from tracker_service.domain.oauth.tokens import looks_like_access_token, principal_of_token
from tracker_service.errors import (
    Forbidden,
    InvalidRequest,
    RateLimited,
    TrackerError,
    Unauthorized,
)
from tracker_service.idempotency import (
    CapturedResponse,
    KeyedRequest,
    check_key,
    claim_idempotency_key,
    request_hash,
    store_response,
)
from tracker_service.notify import EventHub
from tracker_service.settings import Settings
from tracker_service.web.body import parse_json_body
from tracker_service.web.params import AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY, KEY_RECORDED_IN_STATEMENT

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT_METHODS = frozenset({"POST", "PUT", "PATCH"})


class PayloadTooLarge(TrackerError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Payload too large"


class RateLimiter:
    """Token bucket per API key, in this process's memory (N processes allow N x the rate)."""

    def __init__(self, per_minute: int, what: str = "requests per minute for this API key") -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.what = what
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, ident: str) -> None:
        """Take one token of `ident`'s bucket, or raise RateLimited."""
        if self.capacity <= 0:
            return
        now = time.monotonic()
        tokens = self._tokens(ident, now)
        if tokens < 1:
            self._buckets[ident] = (tokens, now)
            raise self._limited(tokens)
        self._buckets[ident] = (tokens - 1, now)

    def refuse_if_empty(self, ident: str) -> None:
        """Raise RateLimited when `ident` has no token left, taking none."""
        if self.capacity > 0 and ident in self._buckets and (tokens := self._tokens(ident, time.monotonic())) < 1:
            raise self._limited(tokens)

    def _tokens(self, ident: str, now: float) -> float:
        tokens, last = self._buckets.get(ident, (self.capacity, now))
        if len(self._buckets) > 100_000:  # bounded memory: forget everyone (a fresh start for all)
            self._buckets.clear()
        return min(self.capacity, tokens + (now - last) * self.rate)

    def _limited(self, tokens: float) -> RateLimited:
        retry_after = max(1, math.ceil((1 - tokens) / self.rate))
        return RateLimited(
            f"rate limit of {int(self.capacity)} {self.what} reached; retry in {retry_after} s",
            retry_after=retry_after,
        )


@dataclass(frozen=True)
class Credential:
    """What a request authenticates with: an API key, or the board's session cookie."""

    api_key: str | None = None
    session_token: str | None = None


def credential_from(headers: Headers) -> Credential:
    if key := headers.get("x-api-key"):
        return Credential(api_key=key.strip())
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return Credential(api_key=token.strip())
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    # A key sent explicitly wins over a cookie: an API client is never taken for a board session.
    if session := session_token_from(headers.get("cookie")):
        return Credential(session_token=session)
    raise Unauthorized("no API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


async def identify(
    conn: AsyncConnection,
    credential: Credential,
    keys: PrincipalCache,
    failed_auth: RateLimiter,
    address: str,
    jwt_users: JwtUsers | None = None,
) -> tuple[Principal, BoardSession | None]:
    """Who a credential is, for HTTP requests and /ws alike: a key (cached while valid), or a board
    session with its key; failures count against the address, and a key the address has not shown
    to be valid is not even looked up once it is over its limit."""
    if credential.session_token is not None:
        failed_auth.refuse_if_empty(address)
        session = await find_session(conn, credential.session_token)
        if session is None:
            failed_auth.check(address)
            raise Unauthorized(
                "the board session has ended (signed out, expired, or its key was revoked); sign in again"
            )
        return session.principal, session
    key = credential.api_key or ""
    if looks_like_access_token(key):
        failed_auth.refuse_if_empty(address)
        principal = await principal_of_token(conn, key)
        if principal is None:
            failed_auth.check(address)
            raise Unauthorized(
                "the OAuth access token is expired, revoked, or its key is; refresh it or connect again",
                invalid_token=True,
            )
        return principal, None
    if jwt_users is not None and looks_like_jwt(key):
        failed_auth.refuse_if_empty(address)
        try:
            return await jwt_users.principal(key), None
        except Unauthorized:
            failed_auth.check(address)
            raise
    key_hash = hash_key(key)
    if keys.get(key_hash) is None:  # not known to be valid
        failed_auth.refuse_if_empty(address)
    principal = await authenticate(conn, key, keys, key_hash)
    if principal is None:
        failed_auth.check(address)
        raise Unauthorized("invalid or revoked API key", invalid_token=True)
    return principal, None


class RequestContext(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "public"
    # The OpenAPI document needs no key.
    should_bypass_for_scope = staticmethod(lambda scope: scope["path"].startswith("/schema"))

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        limiter: RateLimiter,
        hub: EventHub,
        failed_auth: RateLimiter,
        jwt_users: JwtUsers | None = None,
    ) -> None:
        self.jwt_users = jwt_users
        self.engine = engine
        self.settings = settings
        self.limiter = limiter
        self.hub = hub
        self.failed_auth = failed_auth  # per client address (app.py)
        # Requests queue for the pool here, first come first served. SQLAlchemy's async pool
        # hands a returned connection to whichever request asks next, so under load a request
        # that had been waiting could lose it again and again: at 32 clients p50 28 ms, p99 0.8 s.
        self.connections = asyncio.Semaphore(settings.pool_size)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = Headers.from_scope(scope)
        check_path_encoding(scope)
        credential = credential_from(headers)
        method = str(scope.get("method", ""))
        writes = method not in SAFE_METHODS
        opt = scope["route_handler"].opt
        needed = opt.get("role", "write" if writes else "read")
        # Read the (bounded) body before taking a pooled connection, so slow uploads hold none.
        body = await self._read_body(headers, receive) if writes else b""
        parse_json_body(scope, headers, body)
        if opt.get("own_connection"):
            # Long-lived routes (SSE, waiting for a result) must not hold a pooled connection:
            # check the key, give it back, and let the handler open short ones itself.
            async with self.connections, self.engine.connect() as conn:
                principal = await self._authorize(conn, credential, needed, scope, headers)
            scope.setdefault("state", {})["principal"] = principal
            # Such handlers commit, and notify, themselves.
            await next_app(scope, _replaying_receive(body) if writes else receive, send)
            return
        idem_key = headers.get("idempotency-key") if method in IDEMPOTENT_METHODS else None
        state = scope.setdefault("state", {})
        if idem_key is not None and opt.get(KEY_RECORDED_IN_STATEMENT, False):
            check_key(idem_key)
            state["keyed_request"] = KeyedRequest(idem_key, request_hash(scope, body))
            idem_key = None  # the route's statement records it
        autocommit = writes and idem_key is None and opt.get(AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY, False)
        # Reads run in autocommit too: at READ COMMITTED a transaction gives them nothing (each
        # statement takes its own snapshot either way) and costs a BEGIN and a ROLLBACK round trip.
        async with self.connections, request_connection(self.engine, autocommit or not writes) as conn:
            principal = await self._authorize(conn, credential, needed, scope, headers)
            state["conn"] = conn
            state["principal"] = principal
            state["autocommit"] = autocommit  # a write that committed by itself (web.problems)
            if not writes:
                await next_app(scope, receive, send)
                return
            replayed = _replaying_receive(body)
            if autocommit:
                await self._autocommitted(scope, replayed, send, next_app, principal)
            else:
                await self._in_transaction(scope, replayed, send, next_app, conn, principal, idem_key, body)

    async def _autocommitted(
        self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp, principal: Principal
    ) -> None:
        """A one-statement write without Idempotency-Key: the statement committed by itself."""
        status = 500

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await next_app(scope, receive, send_seen)
        if status < 400:
            self.hub.changed(principal.tenant)

    async def _in_transaction(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        conn: AsyncConnection,
        principal: Principal,
        idem_key: str | None,
        body: bytes,
    ) -> None:
        """A write in one transaction, with its Idempotency-Key record: committed before the answer
        leaves (a success means stored), undone on any error."""
        if not conn.in_transaction():
            await conn.begin()  # statements run on the driver connection (db.hot) join this transaction
        if idem_key is not None:
            stored = await claim_idempotency_key(conn, principal, idem_key, request_hash(scope, body))
            if stored is not None:
                await conn.rollback()
                await stored.replay(send)
                return
        captured = CapturedResponse()
        await next_app(scope, receive, captured.send)
        if captured.status < 400:
            if idem_key is not None:
                await store_response(conn, principal, idem_key, captured)
            await conn.commit()
            self.hub.changed(principal.tenant)
        else:
            await conn.rollback()
        await captured.replay(send)

    async def _authorize(
        self, conn: AsyncConnection, credential: Credential, needed: str, scope: Scope, headers: Headers
    ) -> Principal:
        method, path = str(scope.get("method", "")), scope["path"]
        principal = await self._authenticate(conn, credential, scope, headers)
        if not principal.allows(needed):
            raise Forbidden(f"this API key has role '{principal.role}'; {method} {path} needs '{needed}'")
        self.limiter.check(principal.key_id)
        return principal

    async def _authenticate(
        self, conn: AsyncConnection, credential: Credential, scope: Scope, headers: Headers
    ) -> Principal:
        address = (scope.get("client") or ("unknown", 0))[0]
        principal, session = await identify(conn, credential, self.hub.keys, self.failed_auth, address, self.jwt_users)
        if session is not None:
            if str(scope.get("method", "")) not in SAFE_METHODS:
                session.check_csrf(headers.get(CSRF_HEADER))
            scope.setdefault("state", {})["board_csrf"] = session.csrf_token
        return principal

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = cast(bytes, message.get("body", b""))
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def check_path_encoding(scope: Scope) -> None:
    """Percent-escapes in the path and query must decode as UTF-8: Litestar would turn bad bytes
    into U+FFFD silently, and a project named by them would become "\ufffd"."""
    raw_path = scope.get("raw_path") or b""
    for part, field in ((raw_path, "path"), (scope.get("query_string", b""), "query")):
        if b"%" not in part and part.isascii():
            continue
        try:
            unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"the request {field} is not valid UTF-8 once percent-decoded",
                errors=[{"field": field, "message": "must be UTF-8", "source": field}],
            ) from None


def _replaying_receive(body: bytes) -> Receive:
    sent = False

    async def receive() -> HTTPReceiveMessage:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
