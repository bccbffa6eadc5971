"""Naming a task: by UUID, or by key (with its project when the key exists in several)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import tasks
from tracker_service.errors import AmbiguousKey, InvalidRequest, TaskNotFound


def ref_condition(tenant: str, ref: str, project: str | None) -> list[Any]:
    """The conditions naming `ref`, with its values written in (for statements built per request)."""
    match, binds = ref_match(ref, project)
    return ref_where(tasks, match, {"b_tenant": tenant, **binds})


def ref_match(ref: str, project: str | None) -> tuple[str, dict[str, Any]]:
    """How `ref` names a task (by id, by key, by key in a project) and the values ref_where binds."""
    try:
        return "id", {"b_id": UUID(ref)}
    except ValueError:
        if project is None:
            return "key", {"b_key": ref}
        return "key_in_project", {"b_key": ref, "b_project": project}


def ref_where(table: Any, match: str, values: dict[str, Any] | None = None) -> list[Any]:
    """The conditions on `table` (the tasks table or an alias) for a ref_match shape. Without
    `values` they bind b_tenant, b_id or b_key, b_project by name: for statements prepared once per
    shape (db.hot)."""

    def bind(name: str, type_: Any = None) -> Any:
        if values is None:
            return bindparam(name, type_=type_)
        return bindparam(name, values[name], type_=type_, unique=True)

    where = [table.c.tenant == bind("b_tenant")]
    if match == "id":
        return [*where, table.c.id == bind("b_id", PgUUID)]
    where.append(table.c.key == bind("b_key"))
    return [*where, table.c.project == bind("b_project")] if match == "key_in_project" else where


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
    """`rows`: SQLAlchemy rows, or dicts from prepared statements (db.hot)."""
    found = [row if isinstance(row, Mapping) else row._mapping for row in rows]
    return AmbiguousKey(
        f"{ref} names tasks in {len(rows)} projects; add ?project=<name> to say which",
        candidates=[{"id": str(row["id"]), "project": row["project"]} for row in found],
    )
