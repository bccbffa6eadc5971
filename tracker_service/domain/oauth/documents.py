"""Client ID metadata documents: a client whose ID is an https URL describes itself at that URL.

MCP clients prefer this to registration (the MCP authorization spec, 2025-11-25): nothing to
register per server, and the person approving sees a name its owner controls. A document is
fetched when first named and again after an hour, kept in oauth_clients like a registered client
(consent requests refer to it). It must be JSON of at most 64 KiB, name itself as `client_id`,
list its redirect URIs and ask for no client secret (it is a public client: PKCE protects it).
Plain http is accepted only for loopback addresses, and only when the tracker itself is served on
one (development and tests), so a document URL cannot make a public tracker probe its own network.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import httpx
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker_service.db.models import oauth_clients

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024
REFRESH_SECONDS = 3600
FETCH_TIMEOUT = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ClientDocuments:
    def __init__(self, enabled: bool, allow_loopback_http: bool) -> None:
        self.enabled = enabled
        self.allow_loopback_http = allow_loopback_http

    def names_document(self, client_id: str) -> bool:
        if not self.enabled:
            return False
        parts = urlsplit(client_id)
        if parts.scheme == "https":
            return bool(parts.hostname) and parts.path not in ("", "/")
        return parts.scheme == "http" and self.allow_loopback_http and parts.hostname in LOOPBACK

    async def client(self, engine: AsyncEngine, url: str) -> OAuthClientInformationFull | None:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(oauth_clients.c.metadata).where(
                        oauth_clients.c.client_id == url,
                        oauth_clients.c.fetched_at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, REFRESH_SECONDS),
                    )
                )
            ).first()
        if row is not None:
            return OAuthClientInformationFull.model_validate(row.metadata)
        try:
            client = await self._fetch(url)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("client metadata document %s refused: %s", url, exc)
            return None
        stored = client.model_dump(mode="json", exclude_none=True)
        async with engine.begin() as conn:
            statement = insert(oauth_clients).values(client_id=url, metadata=stored, fetched_at=func.now())
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[oauth_clients.c.client_id], set_={"metadata": stored, "fetched_at": func.now()}
                )
            )
        return client

    async def _fetch(self, url: str) -> OAuthClientInformationFull:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"answered {response.status_code}")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise ValueError(f"larger than {MAX_BYTES} bytes")
        try:
            metadata = OAuthClientMetadata.model_validate_json(body)
        except ValidationError as exc:
            raise ValueError(f"not valid client metadata: {exc.errors()[0]['msg']}") from exc
        document = metadata.model_dump(mode="json")
        named = json.loads(body).get("client_id")
        if named != url:
            raise ValueError(f"its client_id is {named!r}, not its own URL")
        if not metadata.redirect_uris:
            raise ValueError("it lists no redirect_uris")
        if metadata.token_endpoint_auth_method not in (None, "none"):
            raise ValueError("a metadata document client is public: token_endpoint_auth_method must be 'none'")
        document["token_endpoint_auth_method"] = "none"
        return OAuthClientInformationFull.model_validate({**document, "client_id": url})
