"""`tracker import` and `POST /import`: record lines into a tenant, in one transaction.

Every line is checked (records.row_of) before anything is written: the first bad one fails the
whole import with its line number and field. Into an empty tenant the rows go in as they are, so
export -> import -> export gives the same bytes. Into a tenant that has data they are merged:
  - a task is the same task when its (project, key) is; a handoff, conversation or reservation
    when its id is (in that tenant); settings by project; counters take the larger value;
  - a row that exists and differs is a conflict: reported, the stored row kept;
  - an id another row already holds (another tenant's) is replaced by a new one, and so are the
    references to it; a TASK key held by another project of the tenant gets the next TASK number;
  - an event identical to one stored is not added twice.
Afterwards the tenant's TASK counter is past every TASK key, so later keys never collide.
A dry run does all of it in a savepoint and rolls it back: the report is what would change.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.sql
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Table, any_, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tracker_service.db import models as m
from tracker_service.domain.ids.service import TASK_KEY, TENANT_SCOPE, format_id, id_text_sql
from tracker_service.domain.transfer.records import KINDS, TABLES, RecordError, loads, record_of, row_of
from tracker_service.errors import InvalidRequest

# Kinds merged by id, and the columns of other kinds that refer to them.
_BY_ID = ("id_reservation", "conversation", "handoff", "task")
_REFERENCES: dict[str, dict[str, str]] = {
    "task": {"parent_id": "task", "related_handoff_id": "handoff", "conversation_id": "conversation"},
    "handoff": {"response_to": "handoff"},
    "task_dependency": {"task_id": "task", "depends_on_id": "task"},
    "conversation_message": {"conversation_id": "conversation"},
}
_NATURAL_KEY: dict[str, tuple[str, ...]] = {
    "project_settings": ("tenant", "project"),
    "id_counter": ("tenant", "project", "type"),
    "id_free": ("tenant", "project", "type", "value"),
    "conversation_message": ("conversation_id", "seq"),
    "task_dependency": ("task_id", "depends_on_id"),
}


@dataclass
class Row:
    line: int
    kind: str
    table: Table
    values: dict[str, Any]


@dataclass
class ImportReport:
    dry_run: bool
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "created": {k: self.created[k] for k in KINDS if self.created[k]},
            "updated": {k: self.updated[k] for k in KINDS if self.updated[k]},
            "unchanged": {k: self.unchanged[k] for k in KINDS if self.unchanged[k]},
            "conflicts": self.conflicts,
        }


def parse_lines(lines: Iterable[str], tenant: str | None = None) -> list[Row]:
    """Every non-blank line checked; the first bad one raises InvalidRequest naming line and field."""
    return parse_records(((n, loads_at(n, line)) for n, line in enumerate(lines, 1) if line.strip()), tenant)


def loads_at(number: int, line: str) -> dict[str, Any]:
    try:
        return loads(line)
    except RecordError as exc:
        raise _at(number, exc) from None


def parse_records(numbered: Iterable[tuple[int, dict[str, Any]]], tenant: str | None = None) -> list[Row]:
    """Records (with their line numbers) checked; `tenant`, when given, replaces theirs."""
    rows = []
    for number, record in numbered:
        if tenant is not None and record.get("kind") in KINDS and "tenant" in TABLES[record["kind"]].c:
            record = {**record, "tenant": tenant}
        try:
            table, values = row_of(record)
        except RecordError as exc:
            raise _at(number, exc) from None
        rows.append(Row(number, record["kind"], table, values))
    _refuse_repeats(rows)
    return rows


def import_rows(conn: Connection, rows: list[Row], *, tenant: str | None = None, dry_run: bool = False) -> ImportReport:
    """Write (or, on a dry run, try and undo) the rows in the caller's transaction. `tenant`, when
    given, is the only tenant references may reach (the rows' tenant was set by parse_records)."""
    report = ImportReport(dry_run=dry_run)
    savepoint = conn.begin_nested()
    try:
        _Merge(conn, rows, report, tenant).run()
    except BaseException:
        savepoint.rollback()
        raise
    if dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    return report


def _refuse_repeats(rows: list[Row]) -> None:
    """Two rows of a file with one id (or one task key) would make one row, or fail on insert."""
    first: dict[tuple[Any, ...], int] = {}
    for row in rows:
        v = row.values
        seen: tuple[Any, ...]
        if row.kind in _BY_ID and "id" in v:
            name, seen = "id", (row.kind, v["id"])
        elif row.kind == "task":
            name, seen = "key", (row.kind, v["tenant"], v["project"], v["key"])
        elif row.kind in _NATURAL_KEY:
            name, seen = _NATURAL_KEY[row.kind][-1], (row.kind, *(v[k] for k in _NATURAL_KEY[row.kind]))
        else:
            continue
        if seen in first:
            raise _at(row.line, RecordError(f"{row.kind} repeats line {first[seen]}", name))
        first[seen] = row.line


def _at(number: int, exc: RecordError) -> InvalidRequest:
    where = f"line {number}" + (f", field {exc.field}" if exc.field else "")
    error: dict[str, Any] = {"line": number, "message": exc.detail}
    if exc.field:
        error["field"] = exc.field
    return InvalidRequest(f"{where}: {exc.detail}", errors=[error])


class _Merge:
    """One import: ids resolved, rows compared with what is stored, new rows inserted by kind."""

    def __init__(self, conn: Connection, rows: list[Row], report: ImportReport, tenant: str | None) -> None:
        self.conn, self.report, self.tenant = conn, report, tenant
        self.stored: dict[str, set[Any]] = defaultdict(set)  # kind -> ids of rows already stored
        self.stored_rows: dict[str, dict[Any, Any]] = defaultdict(dict)  # kind -> natural key -> row
        self._events: dict[tuple[Any, ...], Any] | None = None
        self.counted_before: set[tuple[Any, ...]] = set()  # ID counters stored before the import
        self.by_kind: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            self.by_kind[row.kind].append(row)
        self.ids: dict[str, dict[Any, Any]] = defaultdict(dict)  # kind -> id in the file -> id stored
        self.tenant_of: dict[str, dict[Any, str]] = defaultdict(dict)  # kind -> stored id -> tenant

    def run(self) -> None:
        self.counted_before = self._counted_scopes()
        for kind in KINDS:
            rows = self.by_kind.get(kind, [])
            if kind in _BY_ID:
                self._resolve_ids(kind, rows)
            for row in rows:
                self._remap(row)
            fresh = [row for row in rows if self._is_new(row)]
            if kind in ("task", "handoff"):
                fresh = _parents_first(kind, fresh)
            if kind == "task_dependency":
                _refuse_cycles(fresh)
            self._insert(kind, fresh)
        self._move_task_counters()
        # After a bulk load the planner still sees the old row counts until autovacuum's next
        # pass: measured, an export right after importing 100k tasks chose nested loops and ran
        # for minutes. ANALYZE (allowed in a transaction) gives it the new ones now.
        for kind in () if self.report.dry_run else KINDS:  # (ANALYZE writes row counts in place)
            if self.report.created[kind] >= _ANALYZE_FROM:
                self.conn.execute(text(f"ANALYZE {TABLES[kind].name}"))

    # ids: a stored row of the same tenant is the same row; an id held elsewhere gets a new one.
    def _resolve_ids(self, kind: str, rows: list[Row]) -> None:
        table = rows[0].table if rows else None
        if table is None:
            return
        ids = [r.values.setdefault("id", uuid.uuid4()) for r in rows]
        held = dict(self.conn.execute(select(table.c.id, table.c.tenant).where(_any(table.c.id, ids))).all())
        by_key: dict[tuple[str, str, str], Any] = {}
        if kind == "task":
            by_key = self._tasks_by_key(rows)
        seen: set[Any] = set()
        for row in rows:
            old = row.values["id"]
            tenant = row.values["tenant"]
            if kind == "task" and (tenant, row.values["project"], row.values["key"]) in by_key:
                new = by_key[(tenant, row.values["project"], row.values["key"])]
                self.stored[kind].add(new)
            elif old in held and held[old] == tenant and kind != "task":
                new = old
                self.stored[kind].add(new)
            elif old in held or old in seen:
                new = uuid.uuid4()
            else:
                new = old
            seen.add(new)
            self.ids[kind][old] = new
            self.tenant_of[kind][new] = tenant
            row.values["id"] = new
        if self.stored[kind]:  # read once, compared row by row in _is_new
            query = select(table).where(_any(table.c.id, self.stored[kind]))
            self.stored_rows[kind] = {r["id"]: r for r in self.conn.execute(query).mappings()}

    def _tasks_by_key(self, rows: list[Row]) -> dict[tuple[str, str, str], Any]:
        t = m.tasks.c
        found: dict[tuple[str, str, str], Any] = {}
        for tenant in {r.values["tenant"] for r in rows}:
            keys = [r.values["key"] for r in rows if r.values["tenant"] == tenant]
            query = select(t.tenant, t.project, t.key, t.id).where(t.tenant == tenant, _any(t.key, keys))
            found.update({(a, b, c): d for a, b, c, d in self.conn.execute(query)})
        self._rekey_tasks(rows, found)
        return found

    def _rekey_tasks(self, rows: list[Row], found: dict[tuple[str, str, str], Any]) -> None:
        """A TASK key held by another project of the tenant: the task gets the next TASK number."""
        held_elsewhere = {(a, c) for a, b, c in found}
        taken_here = {(r.values["tenant"], r.values["key"]) for r in rows}
        for row in rows:
            v = row.values
            if (v["tenant"], v["project"], v["key"]) in found or (v["tenant"], v["key"]) not in held_elsewhere:
                continue
            if not TASK_KEY.match(v["key"]):
                continue  # other keys may repeat across projects
            new_key = self._next_task_key(v["tenant"], taken_here)
            self._conflict(row, v["key"], f"key {v['key']} is held by another project; imported as {new_key}")
            taken_here.add((v["tenant"], new_key))
            v["key"] = new_key

    def _next_task_key(self, tenant: str, taken: set[tuple[str, str]]) -> str:
        last = self.conn.execute(_LAST_TASK_NUMBER, {"tenant": tenant, "scope": TENANT_SCOPE}).scalar_one()
        number = int(last) + 1
        while (tenant, format_id("TASK", number)) in taken:
            number += 1
        return format_id("TASK", number)

    def _remap(self, row: Row) -> None:
        """References to rows of the file follow their new ids; other references must be stored."""
        for column, target in _REFERENCES.get(row.kind, {}).items():
            ref = row.values.get(column)
            if ref is None:
                continue
            if ref in self.ids[target]:
                row.values[column] = self.ids[target][ref]
            elif not self._stored(target, ref, row.values.get("tenant", self.tenant)):
                raise _at(
                    row.line, RecordError(f"{row.kind}.{column}: no {target} {ref} in the file or stored", column)
                )
        if row.kind == "conversation_message":
            for column, target in (("task_ids", "task"), ("handoff_ids", "handoff")):
                row.values[column] = [self.ids[target].get(i, i) for i in row.values.get(column, [])]

    def _stored(self, kind: str, ref: Any, tenant: str | None) -> bool:
        table = {"task": m.tasks, "handoff": m.handoffs, "conversation": m.conversations}[kind]
        query = select(table.c.tenant).where(table.c.id == ref)
        stored_tenant = self.conn.execute(query).scalar_one_or_none()
        return stored_tenant is not None and (tenant is None or stored_tenant == tenant)

    def _is_new(self, row: Row) -> bool:
        """False for a row already stored (counted unchanged, or reported as a conflict)."""
        stored = self._stored_row(row)
        if stored is None and row.kind == "id_free" and self._scope(row) in self.counted_before:
            # Released in the file, but this counter was already running here: the number may have
            # been given out since, and an ID is never given twice.
            self._conflict(row, _name(row), "this ID's counter already runs here, so it is not released again")
            return False
        if stored is None:
            return True
        mine = record_of_values(row.kind, row.values)
        theirs = record_of(row.kind, stored)
        differ = sorted(k for k, v in mine.items() if k != "kind" and theirs.get(k) != v)
        if row.kind == "id_counter":
            if row.values["last_value"] > stored["last_value"]:
                self.conn.execute(
                    m.id_counters.update()
                    .where(*(m.id_counters.c[k] == row.values[k] for k in _NATURAL_KEY["id_counter"]))
                    .values(last_value=row.values["last_value"])
                )
                self.report.updated[row.kind] += 1
            else:
                self.report.unchanged[row.kind] += 1
            return False
        if differ:
            self._conflict(row, _name(row), f"stored {row.kind} differs in {', '.join(differ)}; the stored one is kept")
        else:
            self.report.unchanged[row.kind] += 1
        return False

    @staticmethod
    def _scope(row: Row) -> tuple[Any, ...]:
        return tuple(row.values[k] for k in _NATURAL_KEY["id_counter"])

    def _counted_scopes(self) -> set[tuple[Any, ...]]:
        """The ID counters stored before this import, as (tenant, project, type)."""
        tenants = sorted({r.values["tenant"] for r in self.by_kind.get("id_free", [])})
        if not tenants:
            return set()
        c = m.id_counters.c
        query = select(*(c[k] for k in _NATURAL_KEY["id_counter"])).where(_any(c.tenant, tenants))
        return {tuple(r) for r in self.conn.execute(query)}

    def _stored_row(self, row: Row) -> Any:
        table, v = row.table, row.values
        if row.kind in _BY_ID:
            return self.stored_rows[row.kind].get(v["id"])
        if row.kind == "task_dependency":
            if not {v["task_id"], v["depends_on_id"]} <= self.stored["task"]:
                return None  # a dependency of a task new to the database is new
            return self._stored_children(row, "task_id", self.stored["task"]).get((v["task_id"], v["depends_on_id"]))
        if row.kind == "conversation_message":
            if v["conversation_id"] not in self.stored["conversation"]:
                return None
            keys = self.stored["conversation"]
            return self._stored_children(row, "conversation_id", keys).get((v["conversation_id"], v["seq"]))
        if row.kind in _NATURAL_KEY:  # settings and the ID registry: few rows
            where = [table.c[k] == v[k] for k in _NATURAL_KEY[row.kind]]
            return self.conn.execute(select(table).where(*where)).mappings().first()
        return self._stored_event(row)  # the same event twice is the same event

    def _stored_children(self, row: Row, column: str, parents: set[Any]) -> dict[Any, Any]:
        """The stored rows of a kind whose `column` is one of `parents`, by natural key, read once."""
        if row.kind not in self.stored_rows:
            table, key = row.table, _NATURAL_KEY[row.kind]
            query = select(table).where(_any(table.c[column], parents))
            self.stored_rows[row.kind] = {tuple(r[k] for k in key): r for r in self.conn.execute(query).mappings()}
        return self.stored_rows[row.kind]

    def _stored_event(self, row: Row) -> Any:
        if self._events is None:
            self._events = self._load_events()
        return self._events.get(_event_print(row.values))

    def _load_events(self) -> dict[tuple[Any, ...], Any]:
        rows = self.by_kind.get("event", [])
        tenants = sorted({r.values["tenant"] for r in rows})
        times = sorted({r.values["created_at"] for r in rows if "created_at" in r.values})
        if not tenants or not times:
            return {}
        e = m.events
        query = select(e).where(_any(e.c.tenant, tenants), _any(e.c.created_at, times))
        return {_event_print(dict(r)): r for r in self.conn.execute(query).mappings()}

    def _insert(self, kind: str, rows: list[Row]) -> None:
        if not rows:
            return
        # executemany needs one set of columns per statement (records may leave defaults out).
        groups: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            groups[frozenset(row.values)].append(row.values)
        if len(groups) > 1:
            for row in rows:  # order matters (parents first): one by one
                self.conn.execute(insert(row.table), [row.values])
        elif len(rows) < _COPY_FROM or not self._copy(rows[0].table, [r.values for r in rows]):
            self.conn.execute(insert(rows[0].table), [r.values for r in rows])
        self.report.created[kind] += len(rows)

    def _copy(self, table: Table, rows: list[dict[str, Any]]) -> bool:
        """COPY the rows (same columns, in order) on a synchronous psycopg connection: several
        times faster than INSERT for a big dump. False when the driver is not one (POST /import)."""
        raw = self.conn.connection.driver_connection
        if not isinstance(raw, psycopg.Connection):
            return False
        names = list(rows[0])
        json_at = [i for i, name in enumerate(names) if isinstance(table.c[name].type, JSONB)]
        with raw.cursor() as cursor, cursor.copy(_copy_sql(table.name, names)) as copy:
            for values in rows:
                row = [values[name] for name in names]
                for i in json_at:
                    if row[i] is not None:
                        row[i] = Jsonb(row[i])
                copy.write_row(row)
        return True

    def _move_task_counters(self) -> None:
        """Each tenant's TASK counter past its TASK keys; released TASK IDs a key holds are dropped."""
        tenants = sorted({r.values["tenant"] for r in self.by_kind.get("task", [])})
        for tenant in tenants:
            self.conn.execute(_PAST_TASK_KEYS, {"tenant": tenant, "scope": TENANT_SCOPE})
            self.conn.execute(_UNFREE_TASK_KEYS, {"tenant": tenant, "scope": TENANT_SCOPE})

    def _conflict(self, row: Row, name: str, detail: str) -> None:
        self.report.conflicts.append({"line": row.line, "kind": row.kind, "name": name, "detail": detail})


_PAST_TASK_KEYS = text(
    """
    INSERT INTO id_counters AS c (tenant, project, type, last_value)
    SELECT :tenant, :scope, 'TASK', max(substring(key FROM 6)::bigint)
    FROM tasks WHERE tenant = :tenant AND key ~ '^TASK-[0-9]{1,12}$'
    HAVING count(*) > 0
    ON CONFLICT (tenant, project, type) DO UPDATE SET last_value = EXCLUDED.last_value
    WHERE c.last_value < EXCLUDED.last_value
    """
)
_LAST_TASK_NUMBER = text(
    """
    SELECT greatest(
        (SELECT coalesce(max(last_value), 0) FROM id_counters
         WHERE tenant = :tenant AND project = :scope AND type = 'TASK'),
        (SELECT coalesce(max(substring(key FROM 6)::bigint), 0) FROM tasks
         WHERE tenant = :tenant AND key ~ '^TASK-[0-9]{1,12}$'))
    """
)
_UNFREE_TASK_KEYS = text(
    f"""
    DELETE FROM id_free f WHERE f.tenant = :tenant AND f.project = :scope AND f.type = 'TASK'
    AND EXISTS (SELECT 1 FROM tasks t WHERE t.tenant = :tenant AND t.key = {id_text_sql("'TASK'", "f.value")})
    """
)


# Below this many rows of a kind, INSERT's round trips cost less than setting up a COPY.
_COPY_FROM = 500
_ANALYZE_FROM = 10_000


def _copy_sql(table: str, names: list[str]) -> psycopg.sql.Composed:
    ident = psycopg.sql.Identifier
    columns = psycopg.sql.SQL(", ").join(ident(n) for n in names)
    return psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(ident(table), columns)


def _any(column: Any, values: Iterable[Any]) -> Any:
    """column = ANY(array): one parameter however many values (IN would bind each one)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def record_of_values(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The record of a row's values, only the columns it has (defaults left out are not compared)."""
    full = record_of(kind, defaultdict(lambda: None, values))
    return {k: v for k, v in full.items() if k == "kind" or k in values}


def _name(row: Row) -> str:
    v = row.values
    if row.kind == "task":
        return f"{v['project']}/{v['key']}"
    if row.kind in _BY_ID:
        return str(v["id"])
    return "/".join(str(v[k]) for k in _NATURAL_KEY.get(row.kind, ("type",)))


def _event_print(v: dict[str, Any]) -> tuple[Any, ...]:
    data = json.dumps(v.get("data"), sort_keys=True)
    return (
        v["tenant"],
        v.get("project"),
        v["type"],
        v.get("entity_id"),
        v.get("actor"),
        v["summary"],
        v.get("created_at"),
        data,
    )


def _parents_first(kind: str, rows: list[Row]) -> list[Row]:
    """Rows ordered so that a parent (or the handoff answered) comes before its children."""
    column = "parent_id" if kind == "task" else "response_to"
    by_id = {r.values["id"]: r for r in rows}
    done: set[Any] = set()
    ordered: list[Row] = []
    for row in rows:
        chain: list[Row] = []
        current: Row | None = row
        while current is not None and current.values["id"] not in done:
            if current in chain:
                raise _at(row.line, RecordError(f"{kind}.{column} makes a loop", column))
            chain.append(current)
            current = by_id.get(current.values.get(column))
        for item in reversed(chain):
            done.add(item.values["id"])
            ordered.append(item)
    return ordered


def _refuse_cycles(rows: list[Row]) -> None:
    """Dependencies of the file that loop (A needs B needs A) would block their tasks forever."""
    needs: dict[Any, list[Any]] = defaultdict(list)
    line_of: dict[Any, int] = {}
    for row in rows:
        needs[row.values["task_id"]].append(row.values["depends_on_id"])
        line_of.setdefault(row.values["task_id"], row.line)
    state: dict[Any, int] = {}  # 1 visiting, 2 done
    for start in list(needs):
        stack: list[tuple[Any, Iterator[Any]]] = [(start, iter(needs[start]))]
        if state.get(start):
            continue
        state[start] = 1
        while stack:
            node, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise _at(line_of[node], RecordError("task_dependency makes a cycle", "depends_on_id"))
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(needs.get(nxt, []))))
