"""The events table: every mutation writes one row in its own transaction (the activity log's source)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import events


def event_values(
    tenant: str,
    type_: str,
    summary: str,
    *,
    project: str | None,
    entity_id: object,
    actor: str | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "project": project,
        "type": type_,
        "entity_id": None if entity_id is None else str(entity_id),
        "actor": actor,
        "summary": summary[:300],
        "data": data,
    }


async def record(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(events), rows)
