"""API keys: only a SHA-256 of each key is stored; the key itself is shown once."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Text, bindparam, cast, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tracker_service.db.models import api_keys, board_sessions, events, oauth_grants
from tracker_service.domain.events.service import event_values
from tracker_service.errors import Unauthorized

if TYPE_CHECKING:
    from tracker_service.notify import EventHub, Subscription

ROLES = ("read", "write", "admin")
PREFIX = "trk_"
BOOTSTRAP_LOCK = 7_466_012


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant: str
    name: str
    role: str
    # A board session acting for the key: the hash of its token (domain.keys.sessions).
    session: str | None = None
    # A user from an identity provider (domain.keys.jwt_users): when its token expires (epoch s).
    expires_at: float | None = None
    # An OAuth access token's grant, client and resource (domain.oauth): the token dies with the grant.
    grant: str | None = None
    oauth_client: str | None = None
    oauth_resource: str | None = None

    def allows(self, needed: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


# Built once: it runs on every request.
_AUTHENTICATE = select(api_keys.c.id, api_keys.c.tenant, api_keys.c.name, api_keys.c.role).where(
    api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
)


async def authenticate(
    conn: AsyncConnection, key: str, cache: PrincipalCache | None = None, key_hash: str | None = None
) -> Principal | None:
    """The key's principal, or None; `key_hash` when the caller has hashed the key already."""
    key_hash = key_hash or hash_key(key)
    if cache is not None and (known := cache.get(key_hash)) is not None:
        return known
    token = cache.token() if cache is not None else 0
    row = (await conn.execute(_AUTHENTICATE, {"key_hash": key_hash})).first()
    if row is None:
        return None  # unknown keys are never cached: a key created a moment later must work
    principal = Principal(str(row.id), row.tenant, row.name, row.role)
    if cache is not None:
        cache.put(key_hash, principal, token)
    return principal


_STILL_ACTIVE = select(api_keys.c.id).where(api_keys.c.id == bindparam("key_id"), api_keys.c.revoked_at.is_(None))
# An OAuth grant still stands: not revoked, its key not revoked.
_GRANT_ACTIVE = (
    select(oauth_grants.c.id)
    .select_from(oauth_grants.join(api_keys, api_keys.c.id == oauth_grants.c.key_id))
    .where(oauth_grants.c.id == bindparam("grant_id", type_=UUID(as_uuid=False)), api_keys.c.revoked_at.is_(None))
)
# A board session still stands: not signed out, not expired, its key not revoked.
_SESSION_ACTIVE = (
    select(board_sessions.c.token_hash)
    .select_from(board_sessions.join(api_keys, api_keys.c.id == board_sessions.c.key_id))
    .where(
        board_sessions.c.token_hash == bindparam("token_hash"),
        board_sessions.c.expires_at > func.now(),
        api_keys.c.revoked_at.is_(None),
    )
)
# While key changes cannot be heard, a long-lived request re-checks its key at least this often.
UNHEARD_RECHECK_SECONDS = 1.0


class KeyRevoked(Unauthorized):
    """The key of a long-lived request (event stream, delegation wait) was revoked meanwhile."""


async def wait_while_valid(
    sub: Subscription, hub: EventHub, engine: AsyncEngine, principal: Principal, timeout: float
) -> bool:
    """Wait for a change like `sub.wait`, then raise KeyRevoked if the caller's key was revoked.

    The key is looked up again only when some key changed (every key change wakes every
    subscription) or while such changes cannot be heard; so a revocation ends streams and
    waits within the notification's delay, about a second at worst.
    """
    if principal.expires_at is not None:
        # A token: valid until it expires. An OAuth token's grant and key are also looked at below.
        left = principal.expires_at - time.time()
        if left <= 0:
            raise KeyRevoked(f"the token of {principal.name!r} expired")
        timeout = min(timeout, left)
    listening = hub.listening
    jwt_user = principal.expires_at is not None and principal.grant is None
    woke = await sub.wait(timeout if listening or jwt_user else min(timeout, UNHEARD_RECHECK_SECONDS))
    if principal.expires_at is not None and principal.expires_at <= time.time():
        raise KeyRevoked(f"the token of {principal.name!r} expired")
    if jwt_user:
        # A user's JWT has nothing to look up: no key row stands behind it.
        sub.keys_changed = False
        return woke
    # A session is also looked at when the wait ran out: it may have expired meanwhile.
    if sub.keys_changed or not listening or (principal.session is not None and not woke):
        sub.keys_changed = False
        async with engine.connect() as conn:
            if principal.session is not None:
                active = (await conn.execute(_SESSION_ACTIVE, {"token_hash": principal.session})).first()
            elif principal.grant is not None:
                active = (await conn.execute(_GRANT_ACTIVE, {"grant_id": principal.grant})).first()
            else:
                active = (await conn.execute(_STILL_ACTIVE, {"key_id": principal.key_id})).first()
        if active is None:
            ended = (
                "board session has ended"
                if principal.session is not None
                else "OAuth grant was revoked"
                if principal.grant is not None
                else "API key was revoked"
            )
            raise KeyRevoked(f"the {ended} ({principal.name!r})")
    return woke


class PrincipalCache:
    """Valid keys' principals, kept only while this process hears every change to api_keys.

    A trigger NOTIFYs `tracker_keys` on any change to the table (migration 0004); the EventHub's
    LISTEN connection calls clear() on it, and on losing or (re)gaining that connection, and
    disables the cache while it is down. A lookup that raced a change is not stored (the token
    taken before the lookup no longer matches). Entries also expire after `ttl` seconds.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.listening = False
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._generation = 0

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._entries.pop(key_hash, None)
            return None
        return entry[0]

    def token(self) -> int:
        return self._generation

    def knows(self, key: str) -> bool:
        """True when `key` is a valid key this cache holds now (no lookup needed)."""
        return self.get(hash_key(key)) is not None

    def put(self, key_hash: str, principal: Principal, token: int) -> None:
        if not self.listening or self.ttl <= 0 or token != self._generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key_hash] = (principal, time.monotonic() + self.ttl)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def set_listening(self, listening: bool) -> None:
        self.listening = listening
        self.clear()


def create_key(conn: Connection, name: str, tenant: str = "default", role: str = "write") -> tuple[str, dict[str, Any]]:
    """Create a key; returns (the key, its row). The key cannot be recovered later."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not name.strip() or not tenant.strip():
        raise ValueError("name and tenant must not be empty")
    key = PREFIX + secrets.token_urlsafe(32)
    exists = conn.execute(
        select(api_keys.c.id).where(
            api_keys.c.tenant == tenant, api_keys.c.name == name, api_keys.c.revoked_at.is_(None)
        )
    ).first()
    if exists:
        raise ValueError(f"tenant {tenant!r} already has an active key named {name!r}; revoke it or pick another name")
    row = (
        conn.execute(
            insert(api_keys)
            .values(tenant=tenant, name=name, role=role, key_hash=hash_key(key), prefix=key[:10])
            .returning(api_keys)
        )
        .one()
        ._asdict()
    )
    conn.execute(
        insert(events).values(
            event_values(
                tenant,
                "key.created",
                f"API key created: {name} ({role})",
                project=None,
                entity_id=row["id"],
                actor="cli",
            )
        )
    )
    return key, row


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.tenant,
            api_keys.c.name,
            api_keys.c.role,
            api_keys.c.prefix,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        ).order_by(api_keys.c.tenant, api_keys.c.created_at)
    )
    return [r._asdict() for r in rows]


def revoke_key(conn: Connection, ref: str, tenant: str | None = None) -> list[dict[str, Any]]:
    """Revoke by id, prefix or name (name within `tenant` when given). Returns what was revoked."""
    match = (api_keys.c.prefix == ref) | (api_keys.c.name == ref) | (cast(api_keys.c.id, Text) == ref)
    cond: list[ColumnElement[bool]] = [match, api_keys.c.revoked_at.is_(None)]
    if tenant:
        cond.append(api_keys.c.tenant == tenant)
    candidates = conn.execute(select(api_keys.c.id).where(*cond)).all()
    if len(candidates) > 1:
        raise ValueError(f"{ref!r} matches {len(candidates)} active keys; name the tenant (--tenant) or use the key id")
    rows = [
        r._asdict()
        for r in conn.execute(
            update(api_keys)
            .where(*cond)
            .values(revoked_at=func.now())
            .returning(api_keys.c.id, api_keys.c.tenant, api_keys.c.name)
        )
    ]
    for r in rows:
        conn.execute(
            insert(events).values(
                event_values(
                    r["tenant"],
                    "key.revoked",
                    f"API key revoked: {r['name']}",
                    project=None,
                    entity_id=r["id"],
                    actor="cli",
                )
            )
        )
    return rows


def bootstrap_admin_key(conn: Connection) -> str | None:
    """On first start with no key at all, create an admin key; return it (else None)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": BOOTSTRAP_LOCK})
    if conn.execute(select(api_keys.c.id).limit(1)).first():
        return None
    key, _ = create_key(conn, name="admin", tenant="default", role="admin")
    return key
