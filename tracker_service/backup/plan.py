"""One sync pass's work: the events read from the log become the objects to write or delete,
each built from the entity's current rows (so a repeat writes the same thing: idempotent).

Several events of one entity in a pass make one object; when two entities share a path in a pass
(a task deleted and another created with its key), the one whose last event came later wins.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.backup import objects
from tracker_service.domain.handoffs.schemas import direction_of
from tracker_service.domain.transfer.records import record_of

_TASKS = text(
    """
    SELECT t.*,
           (SELECT p.key FROM tasks p WHERE p.id = t.parent_id) AS parent_key,
           ARRAY(SELECT d.key FROM task_dependencies td JOIN tasks d ON d.id = td.depends_on_id
                 WHERE td.task_id = t.id ORDER BY d.id) AS depends_on_keys,
           ARRAY(SELECT td.depends_on_id FROM task_dependencies td JOIN tasks d ON d.id = td.depends_on_id
                 WHERE td.task_id = t.id ORDER BY d.id) AS depends_on_ids
    FROM tasks t WHERE t.id = ANY(CAST(:ids AS uuid[]))
    """
)
_HANDOFFS = text("SELECT * FROM handoffs WHERE id = ANY(CAST(:ids AS uuid[]))")
_COUNTERS = text("SELECT * FROM id_counters WHERE tenant = :tenant AND project = :project ORDER BY type")
_FREE = text("SELECT * FROM id_free WHERE tenant = :tenant AND project = :project ORDER BY type, value")
_RESERVATIONS = text(
    "SELECT * FROM id_reservations WHERE tenant = :tenant AND project = :project ORDER BY created_at, id"
)
_SETTINGS = text("SELECT * FROM project_settings WHERE tenant = :t AND project = :p")
DELETED_PREFIX = "Task deleted: "

# An object's new content, or None: delete it.
Changes = dict[str, bytes | None]


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _entities(events: list[Any]) -> dict[tuple[str, ...], Any]:
    """Each entity the events touch, ordered by its last event, mapped to that event."""
    touched: dict[tuple[str, ...], Any] = {}

    def touch(key: tuple[str, ...], event: Any) -> None:
        touched.pop(key, None)  # re-inserted: the order is by last event
        touched[key] = event

    for ev in events:
        area = ev.type.split(".", 1)[0]
        if area in ("task", "handoff") and _uuid(ev.entity_id):
            touch((area, ev.entity_id), ev)
            if ev.type == "task.created":  # task keys come from the tenant-wide counters
                touch(("ids", ev.tenant, ""), ev)
        elif area == "id":
            touch(("ids", ev.tenant, ev.project or ""), ev)
            touch(("ids", ev.tenant, ""), ev)  # some ID types are counted tenant-wide
        elif area == "project" and ev.project is not None:
            touch(("settings", ev.tenant, ev.project), ev)
    return touched


async def changes(conn: AsyncConnection, events: list[Any]) -> Changes:
    touched = _entities(events)
    task_ids = [k[1] for k in touched if k[0] == "task"]
    handoff_ids = [k[1] for k in touched if k[0] == "handoff"]
    tasks = {str(r["id"]): r for r in (await conn.execute(_TASKS, {"ids": task_ids})).mappings()} if task_ids else {}
    handoffs = (
        {str(r["id"]): r for r in (await conn.execute(_HANDOFFS, {"ids": handoff_ids})).mappings()}
        if handoff_ids
        else {}
    )
    out: Changes = {}
    for key, ev in touched.items():
        kind = key[0]
        if kind == "task":
            row = tasks.get(key[1])
            if row is not None:
                _put_task(out, row)
            elif (gone := _deleted_key(ev)) is not None:
                out[objects.task_path(ev.tenant, ev.project, gone)] = None
        elif kind == "handoff" and (h := handoffs.get(key[1])) is not None:
            out[objects.handoff_path(h["tenant"], h["project"], h["id"])] = objects.handoff_document(
                h, direction_of(h["from_agent"], h["to_agent"])
            )
        elif kind == "ids":
            out[objects.ids_path(key[1], key[2])] = await _ids_document(conn, key[1], key[2])
        elif kind == "settings":
            row = (await conn.execute(_SETTINGS, {"t": key[1], "p": key[2]})).mappings().first()
            out[objects.settings_path(key[1], key[2])] = (
                objects.dumps(record_of("project_settings", row)) if row is not None else None
            )
    for tenant, rows in _by_tenant(events).items():
        first = rows[0]
        out[objects.journal_path(tenant, first.txid, first.id)] = objects.journal_lines([r._mapping for r in rows])
    return out


def _put_task(out: Changes, row: Any) -> None:
    depends_on = list(zip(row["depends_on_keys"], row["depends_on_ids"], strict=True))
    out[objects.task_path(row["tenant"], row["project"], row["key"])] = objects.task_document(
        row, depends_on, row["parent_key"]
    )


def _deleted_key(ev: Any) -> str | None:
    """The key of a deleted task: its event's data (or, for events logged before it was there, the
    summary "Task deleted: KEY title")."""
    if isinstance(ev.data, dict) and isinstance(ev.data.get("key"), str):
        return str(ev.data["key"])
    if ev.type == "task.deleted" and ev.summary.startswith(DELETED_PREFIX):
        return str(ev.summary[len(DELETED_PREFIX) :].split(" ", 1)[0])
    return None


async def _ids_document(conn: AsyncConnection, tenant: str, project: str) -> bytes:
    params = {"tenant": tenant, "project": project}
    counters = (await conn.execute(_COUNTERS, params)).mappings().all()
    free = (await conn.execute(_FREE, params)).mappings().all()
    reservations = (await conn.execute(_RESERVATIONS, params)).mappings().all()
    return objects.ids_document(list(counters), list(free), list(reservations))


def _by_tenant(events: list[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for ev in events:
        grouped[ev.tenant].append(ev)
    return grouped
