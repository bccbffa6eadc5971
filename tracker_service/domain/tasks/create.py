"""Creating tasks: one, or a batch that is all or nothing (the request's transaction).

A batch whose items stand alone goes in one statement (keys, rows and log rows); one whose items
refer to earlier ones (dependencies, parents) or mix hand-picked TASK-NNN keys with automatic ones
is created item by item, in order, so each item sees those before it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import handoffs, tasks
from tracker_service.domain.common import format_id
from tracker_service.domain.events.service import record
from tracker_service.domain.ids.service import BUMP_N, BUMPED, TASK_KEY, TENANT_SCOPE, IdRegistry, id_text_sql
from tracker_service.domain.keys.service import Principal
from tracker_service.domain.projects.service import review_defaults
from tracker_service.domain.tasks import hierarchy
from tracker_service.domain.tasks.dependencies import set_dependencies
from tracker_service.domain.tasks.refs import resolve
from tracker_service.domain.tasks.schemas import TaskFields, TaskIn
from tracker_service.errors import DuplicateKey, InvalidRequest
from tracker_service.metrics import IDS_ALLOCATED

# Columns a new task takes from its request as given; the rest have defaults or are derived below.
_DERIVED = ("depends_on", "priority", "status", "tags", "requires_review", "parent", "auto_complete")
_GIVEN = [name for name in TaskFields.model_fields if name not in _DERIVED]

# The batch statement: its automatic keys taken from the tenant's TASK counter, the rows inserted
# and each logged, in the order of the batch. Items come as one JSON array read with the table's
# own row type; items without a key take the counter's numbers in order. A key already used is
# skipped (DO NOTHING): the caller sees fewer rows back, raises, and the transaction undoes the rest.
_CREATE_MANY = HotStatement(
    text(
        f"""
        WITH {BUMP_N}, numbers AS (
            SELECT value, row_number() OVER (ORDER BY value) AS k FROM ({BUMPED}) v
        ), items AS (
            SELECT r.*, row_number() OVER (PARTITION BY r.key IS NULL ORDER BY r.ordinality) AS k
            FROM jsonb_populate_recordset(NULL::tasks, CAST(:items AS jsonb)) WITH ORDINALITY AS r
        ), keyed AS (
            SELECT i.*, coalesce(i.key, {id_text_sql("'TASK'", "n.value")}) AS new_key
            FROM items i LEFT JOIN numbers n ON i.key IS NULL AND n.k = i.k
        ), inserted AS (
            INSERT INTO tasks (tenant, project, key, priority, status, tags, completed_at, lease_expires_at,
                               requires_review, auto_complete, {", ".join(_GIVEN)})
            SELECT :tenant, project, new_key, coalesce(priority, 'medium'), coalesce(status, 'pending'),
                   coalesce(tags, '{{}}'),
                   CASE WHEN status = 'completed' THEN now() END,
                   CASE WHEN status = 'in_progress' THEN now() + CAST(:lease AS interval) END,
                   coalesce(requires_review, false), coalesce(auto_complete, false),
                   {", ".join(_GIVEN)}
            FROM keyed ORDER BY ordinality
            ON CONFLICT ON CONSTRAINT tasks_key_unique DO NOTHING
            RETURNING id, project, key, title
        ), logged AS (
            INSERT INTO events (tenant, project, type, entity_id, actor, summary)
            SELECT :tenant, t.project, 'task.created', t.id::text, :actor,
                   left('Task created: ' || t.key || ' ' || t.title, 300)
            FROM inserted t JOIN keyed b ON b.project = t.project AND b.new_key = t.key
            ORDER BY b.ordinality
        )
        SELECT b.project, b.new_key AS key, t.id
        FROM keyed b LEFT JOIN inserted t ON t.project = b.project AND t.key = b.new_key
        ORDER BY b.ordinality
        """
    )
)


def duplicate(project: str, key: str) -> DuplicateKey:
    return DuplicateKey(
        f"project {project} already has a task {key}; pick another key or omit it", key=key, project=project
    )


class Creator:
    def __init__(self, conn: AsyncConnection, principal: Principal, lease: timedelta) -> None:
        self.conn = conn
        self.principal = principal
        self.tenant = principal.tenant
        self.lease = lease
        self.ids = IdRegistry(conn, principal)

    async def one(self, data: TaskIn) -> UUID:
        defaults = await review_defaults(self.conn, self.tenant, {data.project})
        task_id, _ = await self._insert(data, defaults)
        return task_id

    async def batch(self, items: list[TaskIn]) -> list[tuple[UUID, str]]:
        given = [item.key for item in items if item.key is not None and TASK_KEY.match(item.key)]
        if len(set(given)) < len(given):
            repeated = next(key for key in given if given.count(key) > 1)
            raise DuplicateKey(
                f"the batch gives the key {repeated} twice; TASK-NNN keys name one task in the tenant", key=repeated
            )
        defaults = await review_defaults(self.conn, self.tenant, {item.project for item in items})
        for i, item in enumerate(items):
            _check_review(item, defaults, field=f"tasks.{i}.status")
        if _bulk_safe(items):
            return await self._insert_many(items, defaults)
        return [await self._insert(item, defaults) for item in items]

    async def _insert(self, data: TaskIn, defaults: dict[str, bool]) -> tuple[UUID, str]:
        _check_review(data, defaults)
        await self._check_handoff(data.related_handoff_id)
        if data.key is None:
            key = format_id("TASK", (await self.ids.next_task_numbers(1))[0])
        else:
            key = data.key
            await self.ids.take_task_key(key)
        values = self._row(data, key, defaults)
        if data.parent is not None:
            await hierarchy.lock_placements(self.conn, self.tenant)
            parent_id = await resolve(self.conn, self.tenant, data.parent, data.project, field="parent")
            await hierarchy.place(self.conn, self.tenant, None, data.project, parent_id)
            values["parent_id"] = parent_id
        row = (
            await self.conn.execute(
                pg_insert(tasks)
                .values(**values)
                .on_conflict_do_nothing(constraint="tasks_key_unique")
                .returning(tasks.c.id)
            )
        ).first()
        if row is None:
            raise duplicate(data.project, key)
        if data.depends_on:
            await set_dependencies(self.conn, self.tenant, row.id, data.project, data.depends_on, replace=False)
        await record(
            self.conn,
            self.tenant,
            "task.created",
            f"Task created: {key} {data.title}",
            project=data.project,
            entity_id=row.id,
            actor=self.principal.name,
        )
        return row.id, key

    def _row(self, data: TaskIn, key: str, defaults: dict[str, bool]) -> dict[str, Any]:
        """The tasks row of a new task (without dependencies and parent)."""
        status = data.status or "pending"
        values = data.model_dump(exclude={"project", "key", *_DERIVED}, exclude_none=True)
        values.update(
            tenant=self.tenant,
            project=data.project,
            key=key,
            status=status,
            priority=data.priority or "medium",
            tags=data.tags or [],
            requires_review=_requires_review(data, defaults),
            auto_complete=bool(data.auto_complete),
            completed_at=func.now() if status == "completed" else None,
            lease_expires_at=func.now() + self.lease if status == "in_progress" else None,
        )
        return values

    async def _insert_many(self, items: list[TaskIn], defaults: dict[str, bool]) -> list[tuple[UUID, str]]:
        """Create tasks in one statement (keys, rows and log rows), not three per task."""
        for handoff_id in dict.fromkeys(item.related_handoff_id for item in items if item.related_handoff_id):
            await self._check_handoff(handoff_id)
        for item in items:
            if item.key is not None:
                await self.ids.take_task_key(item.key)
        rows = [
            {
                "project": item.project,
                "key": item.key,
                "requires_review": _requires_review(item, defaults),
                **item.model_dump(
                    mode="json", include={*_GIVEN, "priority", "status", "tags", "auto_complete"}, exclude_none=True
                ),
            }
            for item in items
        ]
        automatic = sum(1 for row in rows if row["key"] is None)
        params = {
            "tenant": self.tenant,
            "actor": self.principal.name,
            "project": TENANT_SCOPE,
            "type": "TASK",
            "n": automatic,
            "lease": self.lease,
            "items": json.dumps(rows),
        }
        created = await _CREATE_MANY.all(self.conn, params)
        IDS_ALLOCATED.labels("single").inc(automatic)
        seen: set[tuple[str, str]] = set()
        for row in created:
            ref = (row["project"], row["key"])
            if row["id"] is None or ref in seen:
                raise duplicate(*ref)
            seen.add(ref)
        return [(row["id"], row["key"]) for row in created]

    async def _check_handoff(self, handoff_id: UUID | None) -> None:
        """A task may only point at a handoff of its own tenant."""
        await check_handoff(self.conn, self.tenant, handoff_id)


async def check_handoff(conn: AsyncConnection, tenant: str, handoff_id: UUID | None) -> None:
    if handoff_id is None:
        return
    found = await conn.execute(select(handoffs.c.id).where(handoffs.c.id == handoff_id, handoffs.c.tenant == tenant))
    if found.first() is None:
        raise InvalidRequest(
            f"related_handoff_id: handoff {handoff_id} not found",
            errors=[{"field": "related_handoff_id", "message": "no such handoff"}],
        )


def _requires_review(data: TaskIn, defaults: dict[str, bool]) -> bool:
    return data.requires_review if data.requires_review is not None else defaults.get(data.project, False)


def _check_review(data: TaskIn, defaults: dict[str, bool], field: str = "status") -> None:
    if data.status == "completed" and _requires_review(data, defaults):
        raise InvalidRequest(
            f"{field}: a task that requires review cannot be created completed; it is completed by a review",
            errors=[{"field": field, "message": "requires review"}],
        )


def _bulk_safe(items: list[TaskIn]) -> bool:
    """True when creating the items in one statement gives exactly what creating them in order would."""
    if any(item.depends_on or item.parent for item in items):
        return False
    automatic = any(item.key is None for item in items)
    return not (automatic and any(item.key is not None and TASK_KEY.match(item.key) for item in items))
