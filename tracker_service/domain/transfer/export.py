"""`tracker export`: every row of a tenant (or of all, or of one project) as record lines.

Kinds come in records.KINDS order and rows of a kind in a fixed order (events by id, the order
they happened in), so exporting what an import wrote gives the same bytes again. Rows are
streamed from a server-side cursor: memory stays flat however big the tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import Connection, Select, or_, select

from tracker_service.db import models as m
from tracker_service.domain.ids.service import TENANT_SCOPE
from tracker_service.domain.transfer.records import TABLES, columns, dumps, record_of

_BATCH = 2000


def export_records(conn: Connection, tenant: str | None = None, project: str | None = None) -> Iterator[dict[str, Any]]:
    """The records of `tenant` (every tenant when None), limited to `project` when given."""
    for kind in TABLES:
        query = _query(kind, tenant, project)
        result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query)
        for row in result.mappings():
            yield record_of(kind, row)


def export_lines(conn: Connection, out: TextIO, tenant: str | None = None, project: str | None = None) -> int:
    """Write the records as JSON lines to `out`; the number of lines written."""
    count = 0
    for record in export_records(conn, tenant, project):
        out.write(dumps(record))
        out.write("\n")
        count += 1
    return count


def _query(kind: str, tenant: str | None, project: str | None) -> Select[Any]:
    table = TABLES[kind]
    query = select(*columns(kind))
    where: list[Any] = []
    if kind == "task_dependency":
        # Both ends inside what is exported, so the dump can be imported on its own.
        t, d = m.tasks.alias("t"), m.tasks.alias("d")
        query = query.join(t, t.c.id == table.c.task_id).join(d, d.c.id == table.c.depends_on_id)
        where += _scope(t, tenant, project) + _scope(d, tenant, project)
        order: list[Any] = [t.c.tenant, table.c.task_id, table.c.depends_on_id]
    elif kind == "conversation_message":
        c = m.conversations
        query = query.join(c, c.c.id == table.c.conversation_id)
        where += _conversation_scope(c, tenant, project)
        order = [c.c.tenant, table.c.conversation_id, table.c.seq]
    elif kind == "conversation":
        where += _conversation_scope(table, tenant, project)
        order = [table.c.tenant, table.c.created_at, table.c.id]
    else:
        where += _scope(table, tenant, project)
        order = _ORDER[kind](table)
    return query.where(*where).order_by(*order)


def _scope(table: Any, tenant: str | None, project: str | None) -> list[Any]:
    where = [] if tenant is None else [table.c.tenant == tenant]
    if project is not None:
        if table.name in ("id_counters", "id_free", "id_reservations"):
            # TASK IDs belong to the tenant (stored with project ''): a project's tasks need them.
            where.append(or_(table.c.project == project, table.c.project == TENANT_SCOPE))
        else:
            where.append(table.c.project == project)
    return where


def _conversation_scope(table: Any, tenant: str | None, project: str | None) -> list[Any]:
    where = [] if tenant is None else [table.c.tenant == tenant]
    if project is not None:
        # Conversations have no project: those that a task of the project came from.
        linked = select(m.tasks.c.conversation_id).where(m.tasks.c.project == project)
        if tenant is not None:
            linked = linked.where(m.tasks.c.tenant == tenant)
        where.append(table.c.id.in_(linked))
    return where


_ORDER: dict[str, Any] = {
    "project_settings": lambda t: [t.c.tenant, t.c.project],
    "id_counter": lambda t: [t.c.tenant, t.c.project, t.c.type],
    "id_free": lambda t: [t.c.tenant, t.c.project, t.c.type, t.c.value],
    "id_reservation": lambda t: [t.c.tenant, t.c.created_at, t.c.id],
    "handoff": lambda t: [t.c.tenant, t.c.created_at, t.c.id],
    "task": lambda t: [t.c.tenant, t.c.created_at, t.c.id],
    "event": lambda t: [t.c.id],
}
