"""Board sessions: a person signs in with an API key once and gets a cookie standing for it.

The cookie holds a random token; only its SHA-256 is stored (migration 0009). A session acts
with its key's tenant, name and role, and is looked up joined to the key on every request, so
revoking the key ends every session of it at once. Writes made with the cookie must carry the
session's CSRF token in a header, which no other site can read or set.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import api_keys, board_sessions
from tracker_service.domain.keys.service import Principal, hash_key
from tracker_service.errors import Forbidden

SESSION_COOKIE = "tracker_session"
CSRF_HEADER = "x-csrf-token"


class CsrfRefused(Forbidden):
    code, title = "CSRF_TOKEN_INVALID", "CSRF token missing or wrong"


@dataclass(frozen=True)
class BoardSession:
    principal: Principal
    csrf_token: str

    def check_csrf(self, sent: str | None) -> None:
        """A write made with the session's cookie must echo its CSRF token (the board's pages do)."""
        if not sent or not hmac.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise CsrfRefused(
                "a write made with the board's session cookie needs the session's token in the "
                "X-CSRF-Token header (the board's pages send it); API clients send their key instead"
            )


def from_own_origin(origin: str | None, host: str | None) -> bool:
    """A browser request sent by the tracker's own pages: its Origin names the host it was sent to."""
    return origin is not None and origin != "null" and urlsplit(origin).netloc == (host or "")


def session_token_from(cookie_header: str | None) -> str | None:
    """The session's token from a Cookie header, read leniently: another site on the same host may
    set cookies http.cookies cannot parse (it then drops them all). The first one named wins, as
    browsers list the most specific path first."""
    for part in (cookie_header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == SESSION_COOKIE and value.strip():
            return value.strip().strip('"')
    return None


_LOOKUP = (
    select(
        board_sessions.c.csrf_token,
        api_keys.c.id,
        api_keys.c.tenant,
        api_keys.c.name,
        api_keys.c.role,
    )
    .select_from(board_sessions.join(api_keys, api_keys.c.id == board_sessions.c.key_id))
    .where(
        board_sessions.c.token_hash == bindparam("token_hash"),
        board_sessions.c.expires_at > func.now(),
        api_keys.c.revoked_at.is_(None),
    )
)


async def find_session(conn: AsyncConnection, token: str) -> BoardSession | None:
    """The live session of a cookie's token: not signed out, not expired, its key not revoked."""
    token_hash = hash_key(token)
    row = (await conn.execute(_LOOKUP, {"token_hash": token_hash})).first()
    if row is None:
        return None
    return BoardSession(Principal(str(row.id), row.tenant, row.name, row.role, session=token_hash), row.csrf_token)


async def open_session(conn: AsyncConnection, principal: Principal, lifetime: timedelta) -> str:
    """A new session for the key; returns the cookie's token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    # Sessions that ran out are swept here, where sessions are made: no background job needed.
    await conn.execute(delete(board_sessions).where(board_sessions.c.expires_at <= func.now()))
    await conn.execute(
        insert(board_sessions).values(
            token_hash=hash_key(token),
            key_id=principal.key_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=func.now() + lifetime,
        )
    )
    return token


async def close_session(conn: AsyncConnection, token: str) -> None:
    await conn.execute(delete(board_sessions).where(board_sessions.c.token_hash == hash_key(token)))
