"""Naming a task: by UUID, or by key (with its project when the key exists in several)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import tasks
from tracker_service.errors import AmbiguousKey, InvalidRequest, TaskNotFound


def ref_condition(tenant: str, ref: str, project: str | None) -> list[Any]:
    try:
        return [tasks.c.tenant == tenant, tasks.c.id == UUID(ref)]
    except ValueError:
        cond = [tasks.c.tenant == tenant, tasks.c.key == ref]
        return cond if project is None else [*cond, tasks.c.project == project]


async def resolve(conn: AsyncConnection, tenant: str, ref: str, project: str | None, field: str | None = None) -> UUID:
    """The task's id; not found or ambiguous are errors (naming `field` when the ref came in one)."""
    rows = (await conn.execute(select(tasks.c.id, tasks.c.project).where(*ref_condition(tenant, ref, project)))).all()
    return only(ref, project, rows, field).id


def only(ref: str, project: str | None, rows: Sequence[Any], field: str | None = None) -> Any:
    if not rows:
        where = f" in project {project}" if project else ""
        if field:
            raise InvalidRequest(
                f"{field}: task {ref} not found{where}",
                errors=[{"field": field, "message": f"task {ref} not found{where}"}],
            )
        raise TaskNotFound(f"Task not found: {ref}{where}", ref=ref)
    if len(rows) > 1:
        raise ambiguous(ref, rows)
    return rows[0]


def ambiguous(ref: str, rows: Sequence[Any]) -> AmbiguousKey:
    return AmbiguousKey(
        f"{ref} names tasks in {len(rows)} projects; add ?project=<name> to say which",
        candidates=[{"id": str(r.id), "project": r.project} for r in rows],
    )
