"""The events table: every mutation writes one row in its own transaction (the activity log's source)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import events
from tracker_service.errors import InvalidRequest

# Every event the tracker writes; `GET /log?type=` takes one of these or one of their areas.
EVENT_TYPES: tuple[str, ...] = (
    "task.created",
    "task.claimed",
    "task.status",
    "task.updated",
    "task.deleted",
    "task.lease_expired",
    "task.review_requested",
    "task.approved",
    "task.changes_requested",
    "id.allocated",
    "id.reserved",
    "id.committed",
    "id.released",
    "id.counter_set",
    "handoff.created",
    "handoff.status",
    "handoff.expired",
    "key.created",
    "key.revoked",
    "project.settings",
)
EVENT_AREAS: tuple[str, ...] = tuple(dict.fromkeys(t.split(".", 1)[0] for t in EVENT_TYPES))


def check_event_type(value: str | None) -> str | None:
    """An area (task) or an exact event type (task.created); anything else is a 400 naming both lists."""
    if value is None or value in EVENT_AREAS or value in EVENT_TYPES:
        return value
    raise InvalidRequest(
        f"type: {value[:60]!r} is neither an area ({', '.join(EVENT_AREAS)}) nor an event type "
        f"({', '.join(EVENT_TYPES)})",
        errors=[{"field": "type", "message": "unknown event type", "source": "query"}],
    )


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


_INSERT_EVENT = insert(events)  # built once: every write runs it


async def record(
    conn: AsyncConnection,
    tenant: str,
    type_: str,
    summary: str,
    *,
    project: str | None,
    entity_id: object,
    actor: str | None,
) -> None:
    """Write one event in the caller's transaction: it commits, or vanishes, with the change."""
    await conn.execute(
        _INSERT_EVENT, event_values(tenant, type_, summary, project=project, entity_id=entity_id, actor=actor)
    )


class EventLog:
    """Reads of the events table for one tenant: the activity log."""

    def __init__(self, conn: AsyncConnection, tenant: str) -> None:
        self.conn = conn
        self.tenant = tenant

    async def entries(
        self, project: str | None, type_: str | None, since: datetime | None, limit: int, entity_id: str | None = None
    ) -> list[dict[str, Any]]:
        cond = [events.c.tenant == self.tenant]
        if entity_id is not None:  # one object's history (index events_entity)
            cond.append(events.c.entity_id == entity_id)
        if project is not None:
            cond.append(events.c.project == project)
        if type_:
            # `task` matches every task.* event; `task.created` only that one.
            cond.append(events.c.type == type_ if "." in type_ else events.c.type.like(f"{type_}.%"))
        if since is not None:
            cond.append(events.c.created_at >= since)
        rows = await self.conn.execute(
            select(events).where(*cond).order_by(events.c.created_at.desc(), events.c.id.desc()).limit(limit)
        )
        return [entry(r) for r in rows]


def entry(row: Any) -> dict[str, Any]:
    return {
        "timestamp": row.created_at,
        "type": row.type.split(".", 1)[0],
        "event": row.type,
        "project": row.project,
        "summary": row.summary,
        "id": row.entity_id,
        "actor": row.actor,
        "event_id": row.id,
    }
