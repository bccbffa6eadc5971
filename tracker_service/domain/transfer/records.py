"""The record format of `tracker export`, `tracker import` and backups: one row, one JSON object.

A record is `{"kind": KIND, column: value, ...}` with the row's columns in table order. Values are
JSON as they are: UUIDs as strings, times as ISO 8601 in UTC with microseconds
(`2026-12-07T14:24:35.123456Z`), arrays as lists, JSONB values as they are. Columns the database
keeps itself are left out (a task's priority_rank and open_children, an event's id and txid), so a
record can be written to another database and read back unchanged.

API: `record_of(kind, row)` and `row_of(record)` convert one way and back; `dumps`/`loads` give the
line; `KINDS` lists the kinds in the order they can be written (what a row refers to comes first).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, RowMapping, SmallInteger, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from tracker_service.db import models
from tracker_service.domain.common import StoredJson, unstorable_text
from tracker_service.errors import InvalidRequest

# Kind -> table, in write order: settings and the ID registry, then conversations and handoffs
# (which tasks refer to), tasks, their dependencies, and the activity log last.
TABLES: dict[str, Table] = {
    "project_settings": models.project_settings,
    "id_counter": models.id_counters,
    "id_free": models.id_free,
    "id_reservation": models.id_reservations,
    "conversation": models.conversations,
    "conversation_message": models.conversation_messages,
    "handoff": models.handoffs,
    "task": models.tasks,
    "task_dependency": models.task_dependencies,
    "event": models.events,
}
KINDS: tuple[str, ...] = tuple(TABLES)

# Kept by the database (triggers, generated columns, sequences): never exported, never written.
_DERIVED: dict[str, frozenset[str]] = {
    "task": frozenset({"priority_rank", "open_children"}),
    "event": frozenset({"id", "txid"}),
}

# The one rule for stored JSON (32 levels, 512 KiB, finite numbers), as the API applies it.
_STORED_JSON: TypeAdapter[Any] = TypeAdapter(StoredJson)


class RecordError(InvalidRequest):
    """A record that cannot be a row; `field` names the culprit (None for the whole record)."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.field = field


def columns(kind: str) -> list[Column[Any]]:
    """The columns a record of `kind` carries, in table order."""
    skip = _DERIVED.get(kind, frozenset())
    return [c for c in TABLES[kind].columns if c.name not in skip]


def record_of(kind: str, row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    """One row (a mapping of column name to value, as read by SQLAlchemy) as a record."""
    out: dict[str, Any] = {"kind": kind}
    for f in _fields(kind):
        value = row[f.name]
        out[f.name] = value if value is None else f.encode(value)
    return out


def row_of(record: Mapping[str, Any]) -> tuple[Table, dict[str, Any]]:
    """The table and column values of a record, checked: raises RecordError naming the field."""
    kind = record.get("kind")
    if not isinstance(kind, str) or kind not in TABLES:
        raise RecordError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", "kind")
    fields = _fields(kind)
    if len(record) - 1 > len(fields) or any(name not in _names(kind) for name in record):
        unknown = sorted(set(record) - _names(kind))
        raise RecordError(f"{kind} has no field {unknown[0]!r}", unknown[0])
    values: dict[str, Any] = {}
    for f in fields:
        if f.name not in record:
            # A column the database fills (ids, created_at) may be left out; any other may not.
            if f.optional:
                continue
            raise RecordError(f"{kind} needs {f.name!r}", f.name)
        values[f.name] = _from_json(kind, f, record[f.name])
    return TABLES[kind], values


@dataclass(frozen=True)
class _Field:
    name: str
    nullable: bool
    optional: bool  # may be left out: nullable or filled by the database
    encode: Callable[[Any], Any]  # a value read from the database (not None) -> JSON
    decode: Callable[[Any], Any]  # a JSON value (not None) -> the database's, or TypeError/ValueError


@functools.cache
def _fields(kind: str) -> tuple[_Field, ...]:
    # Worked out once per kind: an export or import converts hundreds of thousands of rows.
    return tuple(
        _Field(
            c.name,
            bool(c.nullable),
            bool(c.nullable or c.server_default is not None),
            _encoder(c.type),
            _decoder(c.type),
        )
        for c in columns(kind)
    )


@functools.cache
def _names(kind: str) -> frozenset[str]:
    return frozenset(f.name for f in _fields(kind)) | {"kind"}


def _encoder(type_: Any) -> Callable[[Any], Any]:
    if isinstance(type_, ARRAY):
        item = _encoder(type_.item_type)
        return lambda values: [v if v is None else item(v) for v in values]
    if isinstance(type_, PgUUID):
        return str
    if isinstance(type_, DateTime):
        return format_time
    return _same


def _same(value: Any) -> Any:
    return value


def _decoder(type_: Any) -> Callable[[Any], Any]:
    if isinstance(type_, ARRAY):
        item = _decoder(type_.item_type)

        def decode_list(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise TypeError("must be a list")
            return [item(v) for v in value]

        return decode_list
    for sql_type, convert in _CONVERTERS:
        if isinstance(type_, sql_type):
            return functools.partial(convert, type_)
    raise TypeError(f"records do not carry columns of type {type_}")


def dumps(record: Mapping[str, Any]) -> str:
    """The record as one line of JSON (no newline), the same bytes for the same record."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Characters that str.splitlines and some editors take for line breaks, escaped (they can only
    # be inside strings), so a line of the file is a record however it is split.
    return line.translate(_LINE_BREAKS)


_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def loads(line: str) -> dict[str, Any]:
    """One line back to a record (not yet checked: row_of does that)."""
    try:
        value = json.loads(line, parse_constant=_no_constant)
    except ValueError as exc:
        raise RecordError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RecordError("a record must be a JSON object")
    return value


def format_time(value: datetime) -> str:
    """A time as records write it: UTC, microseconds, Z."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _from_json(kind: str, f: _Field, value: Any) -> Any:
    if value is None:
        if not f.nullable:
            raise RecordError(f"{kind}.{f.name} must not be null", f.name)
        return None
    try:
        return f.decode(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{kind}.{f.name} {exc}", f.name) from None


def _json(type_: Any, value: Any) -> Any:
    try:
        value = _STORED_JSON.validate_python(value)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    _storable(value)
    return value


def _storable(value: Any) -> None:
    found = unstorable_text(value, "")
    if found is not None:
        path, problem = found
        raise ValueError(f"{path} {problem}" if path else problem)


def _uuid(type_: Any, value: Any) -> UUID:
    if not isinstance(value, str):
        raise TypeError("must be a UUID string")
    return UUID(value)


def _time(type_: Any, value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("must be an ISO 8601 time string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("must carry a time zone (Z for UTC)")
    return parsed


def _bool(type_: Any, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false")
    return value


def _int(type_: Any, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("must be an integer")
    bits = 64 if isinstance(type_, BigInteger) else 16 if isinstance(type_, SmallInteger) else 32
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f"is out of range (a {bits}-bit integer)")
    return value


def _str(type_: Any, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("must be a string")
    if "\x00" in value or not value.isascii():  # only then can it be unstorable
        _storable(value)
    return value


# Integer covers BigInteger and SmallInteger (subclasses).
_CONVERTERS: tuple[tuple[type, Callable[[Any, Any], Any]], ...] = (
    (JSONB, _json),
    (PgUUID, _uuid),
    (DateTime, _time),
    (Boolean, _bool),
    (Integer, _int),
    (Text, _str),
)
