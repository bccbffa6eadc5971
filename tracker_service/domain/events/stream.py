"""Server-Sent Events of a tenant's events, resumable with Last-Event-ID.

Order and resume use (txid, id): an event is sent only once its transaction id is below the
oldest transaction still running, so no event can later appear before one already sent.
The SSE id is "txid.id"; a client that reconnects with it misses nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker_service.domain.events.service import entry
from tracker_service.domain.keys.service import KeyRevoked, Principal, wait_while_valid
from tracker_service.errors import InvalidRequest, RateLimited
from tracker_service.notify import EventHub, Subscription

HEARTBEAT_SECONDS = 15.0
# Only while a committed event waits behind a running transaction (no NOTIFY will come for it).
BLOCKED_RECHECK_SECONDS = 0.05
_TOKEN = re.compile(r"^(\d{1,20})\.(\d{1,20})$")

_START = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
_READ = text(
    """
    SELECT id, txid::text AS txid, txid < pg_snapshot_xmin(pg_current_snapshot()) AS final,
           type, project, summary, entity_id, actor, created_at, data->>'status' AS status
    FROM events
    WHERE tenant = :tenant AND (txid, id) > (CAST(:txid AS xid8), :id)
      AND (CAST(:project AS text) IS NULL OR project = :project)
    ORDER BY txid, id
    LIMIT 500
    """
)


XID8_MAX = 2**64 - 1
BIGINT_MAX = 2**63 - 1
_NEXT_TXID = text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")


def parse_token(value: str | None) -> tuple[str, int] | None:
    """TXID.ID as sent in Last-Event-ID; anything else, or numbers out of their range, is a 400."""
    if not value:
        return None
    m = _TOKEN.match(value.strip())
    if not m or int(m.group(1)) > XID8_MAX or int(m.group(2)) > BIGINT_MAX:
        raise _bad_position(value)
    return m.group(1), int(m.group(2))


async def resume_position(engine: AsyncEngine, value: str | None) -> tuple[str, int] | None:
    """The position to resume after, checked before the stream starts: a position past every
    transaction so far was never sent by this tracker, and the stream would wait on it forever."""
    position = parse_token(value)
    if position is not None:
        async with engine.connect() as conn:
            next_txid = int((await conn.execute(_NEXT_TXID)).scalar_one())
        if int(position[0]) > next_txid:
            raise _bad_position(value or "")
    return position


def _bad_position(value: str) -> InvalidRequest:
    return InvalidRequest(
        f"Last-Event-ID {value[:60]!r} is not an event id of this stream (expected TXID.ID as sent in an "
        "event's id); reconnect without it to start from now",
        errors=[{"field": "Last-Event-ID", "message": "expected TXID.ID of an event sent before", "source": "header"}],
    )


class StreamSlots:
    """Event streams (SSE and WebSocket) open per key in this process, at most `limit` each (0: no
    limit): each open stream re-reads the log on every change of its tenant."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, principal: Principal) -> Callable[[], None]:
        """Take a slot or raise RateLimited; returns the release, to call once when the stream ends."""
        key = principal.key_id
        if self.limit > 0 and self._open[key] >= self.limit:
            raise RateLimited(
                f"this API key already has {self.limit} event streams open on this tracker process, the "
                "most allowed (TRACKER_STREAMS_PER_KEY); close one, or share one stream",
                retry_after=5,
            )
        self._open[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[key] -= 1
                if self._open[key] <= 0:
                    del self._open[key]

        return release


async def event_stream(
    engine: AsyncEngine,
    hub: EventHub,
    principal: Principal,
    project: str | None,
    resume: tuple[str, int] | None,
    release: Callable[[], None] = lambda: None,
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        async for message in _sse(engine, hub, principal, project, resume):
            yield message
    finally:
        release()


async def _sse(
    engine: AsyncEngine, hub: EventHub, principal: Principal, project: str | None, resume: tuple[str, int] | None
) -> AsyncIterator[ServerSentEventMessage]:
    with hub.subscribe(principal.tenant) as sub:
        start = resume or await start_position(engine)
        # Sent once the start is fixed: what commits after a client saw it is in the stream.
        # data=None: a comment-only frame; an empty data line would fire an empty message in browsers.
        yield ServerSentEventMessage(comment="connected", retry=1000, data=None)
        try:
            async for row in follow(engine, sub, hub, principal, project, start):
                if row is None:
                    yield ServerSentEventMessage(comment="keep-alive", data=None)
                else:
                    yield _message(row)
        except KeyRevoked as exc:
            yield revoked_message(exc)


def revoked_message(exc: KeyRevoked) -> ServerSentEventMessage:
    """The last frame of a stream whose key was revoked; a reconnect then gets 401 and stops."""
    return ServerSentEventMessage(event="revoked", data=json.dumps({"code": exc.code, "detail": exc.detail}))


async def start_position(engine: AsyncEngine) -> tuple[str, int]:
    """Now: every transaction that commits from here on is after this position."""
    async with engine.connect() as conn:
        return (await conn.execute(_START)).scalar_one(), 0


async def follow(
    engine: AsyncEngine,
    sub: Subscription,
    hub: EventHub,
    principal: Principal,
    project: str | None,
    start: tuple[str, int],
) -> AsyncIterator[Any]:
    """The tenant's events in commit order after `start`, as rows; None after each quiet
    HEARTBEAT_SECONDS. Raises KeyRevoked once the caller's key is revoked. `sub` (the hub's
    subscription to the tenant) is taken before `start`, so no change is missed between them.
    Shared by the SSE stream and the WebSocket."""
    tenant = principal.tenant
    txid, last_id = start
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(_READ, {"tenant": tenant, "txid": txid, "id": last_id, "project": project})
            ).all()
        blocked = False
        for row in rows:
            if not row.final:
                blocked = True
                break
            txid, last_id = row.txid, row.id
            yield row
        if blocked or len(rows) == 500:
            await wait_while_valid(sub, hub, engine, principal, BLOCKED_RECHECK_SECONDS)
        elif not await wait_while_valid(sub, hub, engine, principal, HEARTBEAT_SECONDS):
            yield None


def position(row: Any) -> str:
    """Where a client resumes after this event: TXID.ID (the SSE id, the WebSocket's position)."""
    return f"{row.txid}.{row.id}"


def _message(row: Any) -> ServerSentEventMessage:
    data = entry(row)
    data["timestamp"] = data["timestamp"].isoformat()
    return ServerSentEventMessage(data=json.dumps(data), event=row.type, id=position(row))
