"""The authorization server's state in PostgreSQL, behind the MCP SDK's provider protocol.

The SDK's handlers (mcp.server.auth) speak the protocol: metadata (RFC 8414), registration (RFC
7591), authorization with PKCE S256, the token endpoint, revocation (RFC 7009). This class is
where they keep and find things. Every secret (consent request id, code, token) is stored as its
SHA-256; every use that must happen once is one statement (a code is deleted as it is
exchanged, a refresh token marked used as it is rotated), so two concurrent exchanges of the same
code or refresh token cannot both succeed. A refresh token presented again after its rotation is
taken as stolen: the whole grant is revoked (OAuth 2.1 section 4.3.1).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracker_service.db.models import oauth_clients, oauth_codes, oauth_grants, oauth_requests, oauth_tokens
from tracker_service.domain.keys.service import Principal, hash_key
from tracker_service.domain.oauth.documents import LOOPBACK, ClientDocuments
from tracker_service.domain.oauth.tokens import ACCESS_PREFIX, REFRESH_PREFIX, TOKEN_ROW, principal_of_token

CODE_SECONDS = 300
REQUEST_SECONDS = 600
CONSENT_PATH = "/oauth/consent"


@dataclass(frozen=True)
class OAuthPolicy:
    issuer: str
    access_lifetime: timedelta
    refresh_lifetime: timedelta
    # Resources (RFC 8707) tokens may be issued for; any URL on this machine is always allowed.
    resources: tuple[str, ...] = ()

    def check_resource(self, resource: str | None) -> str:
        if not resource:
            raise AuthorizeError(
                "invalid_target", "send the MCP server's URL as `resource` (RFC 8707): tokens are bound to it"
            )
        parts = urlsplit(resource)
        if parts.scheme not in ("http", "https") or parts.fragment:
            raise AuthorizeError("invalid_target", f"resource {resource!r} is not an http(s) URL without fragment")
        if parts.hostname in LOOPBACK or resource.rstrip("/") in {r.rstrip("/") for r in self.resources}:
            return resource
        raise AuthorizeError(
            "invalid_target",
            f"this tracker does not issue tokens for {resource!r}; its operator lists the MCP servers it "
            "serves in TRACKER_OAUTH_RESOURCES",
        )


class StoredCode(AuthorizationCode):
    grant_id: str


class StoredRefreshToken(RefreshToken):
    grant_id: str
    used: bool = False


class StoredAccessToken(AccessToken):
    grant_id: str


@dataclass(frozen=True)
class ConsentRequest:
    client: OAuthClientInformationFull
    params: AuthorizationParams


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)  # 256 bits: RFC 6749 asks for at least 128


class TrackerAuthorizationProvider:
    """``OAuthAuthorizationServerProvider`` for the SDK's handlers, over the tracker's database."""

    def __init__(self, engine: AsyncEngine, policy: OAuthPolicy, documents: ClientDocuments) -> None:
        self.engine = engine
        self.policy = policy
        self.documents = documents

    # Clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if self.documents.names_document(client_id):
            return await self.documents.client(self.engine, client_id)
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(oauth_clients.c.metadata).where(oauth_clients.c.client_id == client_id))
            ).first()
        return None if row is None else OAuthClientInformationFull.model_validate(row.metadata)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        if not client_info.redirect_uris:
            raise RegistrationError("invalid_redirect_uri", "register at least one redirect_uri")
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(oauth_clients).values(
                    client_id=client_info.client_id, metadata=client_info.model_dump(mode="json", exclude_none=True)
                )
            )

    # Authorization: the person decides on the consent page (consent.py)

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        resource = self.policy.check_resource(params.resource)
        request_id = _secret()
        stored = params.model_copy(update={"resource": resource}).model_dump(mode="json")
        async with self.engine.begin() as conn:
            # Requests nobody answered are swept here, where requests are made: no background job.
            await conn.execute(delete(oauth_requests).where(oauth_requests.c.expires_at <= func.now()))
            await conn.execute(
                insert(oauth_requests).values(
                    id_hash=hash_key(request_id),
                    client_id=client.client_id,
                    params=stored,
                    expires_at=func.now() + timedelta(seconds=REQUEST_SECONDS),
                )
            )
        return f"{self.policy.issuer}{CONSENT_PATH}?{urlencode({'request': request_id})}"

    async def consent_request(self, conn: AsyncConnection, request_id: str) -> ConsentRequest | None:
        row = (
            await conn.execute(
                select(oauth_requests.c.client_id, oauth_requests.c.params).where(
                    oauth_requests.c.id_hash == hash_key(request_id), oauth_requests.c.expires_at > func.now()
                )
            )
        ).first()
        if row is None:
            return None
        client = await self.get_client(row.client_id)
        if client is None:
            return None
        return ConsentRequest(client, AuthorizationParams.model_validate(row.params))

    async def approve(self, conn: AsyncConnection, request_id: str, principal: Principal, role: str) -> str | None:
        """The person said yes: the request becomes a grant and a code, once (the request is deleted
        in the same statement that reads it). Returns the code, or None when the request is gone."""
        taken = (
            await conn.execute(
                delete(oauth_requests)
                .where(oauth_requests.c.id_hash == hash_key(request_id), oauth_requests.c.expires_at > func.now())
                .returning(oauth_requests.c.client_id, oauth_requests.c.params)
            )
        ).first()
        if taken is None:
            return None
        params = AuthorizationParams.model_validate(taken.params)
        grant_id = (
            await conn.execute(
                insert(oauth_grants)
                .values(client_id=taken.client_id, key_id=principal.key_id, role=role, resource=params.resource)
                .returning(oauth_grants.c.id)
            )
        ).scalar_one()
        code = _secret()
        await conn.execute(
            insert(oauth_codes).values(
                code_hash=hash_key(code),
                grant_id=grant_id,
                code_challenge=params.code_challenge,
                redirect_uri=str(params.redirect_uri),
                redirect_uri_explicit=params.redirect_uri_provided_explicitly,
                expires_at=func.now() + timedelta(seconds=CODE_SECONDS),
            )
        )
        return code

    async def deny(self, conn: AsyncConnection, request_id: str) -> None:
        await conn.execute(delete(oauth_requests).where(oauth_requests.c.id_hash == hash_key(request_id)))

    # Codes and tokens

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> StoredCode | None:
        query = (
            select(oauth_codes, oauth_grants.c.client_id, oauth_grants.c.role, oauth_grants.c.resource)
            .select_from(oauth_codes.join(oauth_grants, oauth_grants.c.id == oauth_codes.c.grant_id))
            .where(oauth_codes.c.code_hash == hash_key(authorization_code))
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.client_id != client.client_id:
            return None
        return StoredCode(
            code=authorization_code,
            scopes=[row.role],
            expires_at=row.expires_at.timestamp(),
            client_id=row.client_id,
            code_challenge=row.code_challenge,
            redirect_uri=row.redirect_uri,
            redirect_uri_provided_explicitly=row.redirect_uri_explicit,
            resource=row.resource,
            grant_id=str(row.grant_id),
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: StoredCode
    ) -> OAuthToken:
        # The SDK's errors are frozen dataclasses, which cannot pass through a context manager's exit:
        # raised after the transaction.
        async with self.engine.begin() as conn:
            used = (
                await conn.execute(
                    delete(oauth_codes)
                    .where(oauth_codes.c.code_hash == hash_key(authorization_code.code))
                    .returning(oauth_codes.c.grant_id)
                )
            ).first()
            tokens = None if used is None else await self._issue(conn, str(used.grant_id), authorization_code.scopes)
        if tokens is None:
            raise TokenError("invalid_grant", "authorization code was already used; authorize again")
        return tokens

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> StoredRefreshToken | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(TOKEN_ROW, {"token_hash": hash_key(refresh_token)})).first()
        if row is None or row.kind != "refresh" or row.client_id != client.client_id:
            return None
        if row.used_at is not None:
            await self._revoke_grant(str(row.grant_id))
            return None
        return StoredRefreshToken(
            token=refresh_token,
            client_id=row.client_id,
            scopes=[row.role],
            expires_at=_epoch(row.expires_at),
            resource=row.resource,
            grant_id=str(row.grant_id),
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: StoredRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        async with self.engine.begin() as conn:
            rotated = (
                await conn.execute(
                    update(oauth_tokens)
                    .where(
                        oauth_tokens.c.token_hash == hash_key(refresh_token.token),
                        oauth_tokens.c.kind == "refresh",
                        oauth_tokens.c.used_at.is_(None),
                    )
                    .values(used_at=func.now())
                    .returning(oauth_tokens.c.grant_id)
                )
            ).first()
            scopes = scopes or refresh_token.scopes
            tokens = None if rotated is None else await self._issue(conn, refresh_token.grant_id, scopes)
        if tokens is None:
            raise TokenError("invalid_grant", "refresh token was already used; authorize again")
        return tokens

    async def load_access_token(self, token: str) -> StoredAccessToken | None:
        async with self.engine.connect() as conn:
            principal = await principal_of_token(conn, token)
        if principal is None or principal.grant is None or principal.expires_at is None:
            return None
        return StoredAccessToken(
            token=token,
            client_id=principal.oauth_client or "",
            scopes=[principal.role],
            expires_at=int(principal.expires_at),
            resource=principal.oauth_resource,
            subject=principal.key_id,
            grant_id=principal.grant,
        )

    async def revoke_token(self, token: StoredAccessToken | StoredRefreshToken) -> None:
        # Either token ends the whole grant: its other tokens too (RFC 7009 section 2.1 allows it).
        await self._revoke_grant(token.grant_id)

    async def exchange_identity_assertion(self, client: Any, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "this tracker does not accept identity assertions")

    async def _issue(self, conn: AsyncConnection, grant_id: str, scopes: list[str]) -> OAuthToken:
        access, refresh = _secret(ACCESS_PREFIX), _secret(REFRESH_PREFIX)
        now = func.now()
        # Tokens that ran out are swept where tokens are made, as board sessions are.
        await conn.execute(delete(oauth_tokens).where(oauth_tokens.c.expires_at <= now))
        await conn.execute(
            insert(oauth_tokens).values(
                [
                    {
                        "token_hash": hash_key(access),
                        "grant_id": grant_id,
                        "kind": "access",
                        "expires_at": now + self.policy.access_lifetime,
                    },
                    {
                        "token_hash": hash_key(refresh),
                        "grant_id": grant_id,
                        "kind": "refresh",
                        "expires_at": now + self.policy.refresh_lifetime,
                    },
                ]
            )
        )
        # A grant whose code was never exchanged holds nothing: swept after a day.
        await conn.execute(
            delete(oauth_grants).where(
                oauth_grants.c.created_at < now - timedelta(days=1),
                ~exists().where(oauth_tokens.c.grant_id == oauth_grants.c.id),
                ~exists().where(oauth_codes.c.grant_id == oauth_grants.c.id),
            )
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=int(self.policy.access_lifetime.total_seconds()),
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    async def _revoke_grant(self, grant_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(oauth_grants).where(oauth_grants.c.id == uuid.UUID(grant_id)))
