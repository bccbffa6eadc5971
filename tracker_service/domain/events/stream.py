"""Server-Sent Events of a tenant's events, resumable with Last-Event-ID.

Order and resume use (txid, id): an event is sent only once its transaction id is below the
oldest transaction still running, so no event can later appear before one already sent.
The SSE id is "txid.id"; a client that reconnects with it misses nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker_service.domain.events.service import entry
from tracker_service.errors import InvalidRequest
from tracker_service.notify import EventHub

HEARTBEAT_SECONDS = 15.0
# Only while a committed event waits behind a running transaction (no NOTIFY will come for it).
BLOCKED_RECHECK_SECONDS = 0.05
_TOKEN = re.compile(r"^(\d{1,20})\.(\d{1,20})$")

_START = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
_READ = text(
    """
    SELECT id, txid::text AS txid, txid < pg_snapshot_xmin(pg_current_snapshot()) AS final,
           type, project, summary, entity_id, actor, created_at
    FROM events
    WHERE tenant = :tenant AND (txid, id) > (CAST(:txid AS xid8), :id)
      AND (CAST(:project AS text) IS NULL OR project = :project)
    ORDER BY txid, id
    LIMIT 500
    """
)


def parse_token(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    m = _TOKEN.match(value.strip())
    if not m:
        raise InvalidRequest(
            f"Last-Event-ID {value!r} is not an event id of this stream (expected TXID.ID)",
            errors=[{"field": "Last-Event-ID", "message": "expected TXID.ID", "source": "header"}],
        )
    return m.group(1), int(m.group(2))


async def event_stream(
    engine: AsyncEngine, hub: EventHub, tenant: str, project: str | None, resume: tuple[str, int] | None
) -> AsyncIterator[ServerSentEventMessage]:
    with hub.subscribe(tenant) as sub:
        if resume is None:
            async with engine.connect() as conn:
                resume = ((await conn.execute(_START)).scalar_one(), 0)
        txid, last_id = resume
        yield ServerSentEventMessage(comment="connected", retry=1000)
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
                yield _message(row)
            if blocked or len(rows) == 500:
                await sub.wait(BLOCKED_RECHECK_SECONDS)
            elif not await sub.wait(HEARTBEAT_SECONDS):
                yield ServerSentEventMessage(comment="keep-alive")


def _message(row: Any) -> ServerSentEventMessage:
    data = entry(row)
    data["timestamp"] = data["timestamp"].isoformat()
    return ServerSentEventMessage(data=json.dumps(data), event=row.type, id=f"{row.txid}.{row.id}")
