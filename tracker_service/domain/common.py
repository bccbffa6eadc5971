"""Field types shared by the domains' schemas."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    StringConstraints,
)
from pydantic_core import CoreSchema, core_schema

# Names and short texts: no whitespace at either end (nothing is trimmed silently: what is stored
# is what was sent), no control characters. The same pattern is served in the OpenAPI document.
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
# Free text on one or more lines: not blank, no whitespace at either end.
TEXT_PATTERN = r"^\S(?:[\s\S]*\S)?$"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(value: str) -> str:
    # The served pattern says the same; these messages say it in words.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def name_type(max_length: int, description: str | None = None) -> Any:
    """A one-line name: no control characters, no whitespace at either end."""
    return Annotated[
        str,
        StringConstraints(min_length=1, max_length=max_length),
        AfterValidator(_name),
        Field(description=description, json_schema_extra={"pattern": NAME_PATTERN}),
    ]


def text_type(max_length: int, description: str | None = None) -> Any:
    """Text that may span lines: not blank, no whitespace at either end."""
    return Annotated[
        str,
        StringConstraints(min_length=1, max_length=max_length),
        AfterValidator(_text),
        Field(description=description, json_schema_extra={"pattern": TEXT_PATTERN}),
    ]


ProjectName = Annotated[
    name_type(100, "Project name (free text, unique within your tenant)"), Field(examples=["ai-agent-mcp-server"])
]
AgentName = name_type(100)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


IdType = Annotated[
    str,
    # Upper-cased after the pattern (written for both cases, as served) has been checked.
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,19}$"),
    AfterValidator(_upper),
    Field(description="Artifact type: letters, digits, underscore; upper-cased (US, SPEC, TASK)", examples=["US"]),
]

# Stored JSON values (task inputs, outputs and results, handoff metadata, delegation options): one
# rule for all, checked before anything is written, so every stored value can be served back.
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 512 * 1024


def _stored_json(value: Any) -> Any:
    depth = _json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} levels are stored")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise ValueError("numbers must be finite (1e400, NaN and Infinity are not JSON numbers)") from None
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > MAX_JSON_BYTES:
        raise ValueError(f"JSON of {size} bytes; at most {MAX_JSON_BYTES} bytes are stored")
    return value


def _json_depth(value: Any) -> int:
    """Nesting depth of containers (a scalar is 0, [1] is 1), walked without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            return level  # deep enough to refuse; no need to walk the rest
        stack.extend((child, level + 1) for child in children)
    return deepest


_JSON_RULE = f"any JSON value, at most {MAX_JSON_DEPTH} levels deep and {MAX_JSON_BYTES // 1024} KiB encoded"
StoredJson = Annotated[Any, AfterValidator(_stored_json), Field(description=_JSON_RULE)]
StoredObject = Annotated[dict[str, Any], AfterValidator(_stored_json), Field(description=_JSON_RULE)]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    # Lax parsing would also take numbers (and numeric strings) as Unix times: only ISO 8601 text.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time string, e.g. 2026-05-01T12:00:00Z")


def _aware(value: datetime) -> datetime:
    # A time without a zone is taken as UTC rather than the server's local time. A time whose UTC
    # equivalent leaves years 1-9999 could be stored but never read back: refused here.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None
    return value


AwareDatetime = Annotated[datetime, Strict(False), BeforeValidator(_iso_text), AfterValidator(_aware)]


def _uuid_text(value: Any) -> Any:
    if isinstance(value, UUID | str):
        return value
    raise ValueError("must be a UUID string")


UuidValue = Annotated[UUID, Strict(False), BeforeValidator(_uuid_text)]


def _whole_number(value: Any) -> Any:
    # JSON has one number type: 5.0 is the number 5, an integer for JSON Schema as well (the
    # OpenAPI 3.1 document's dialect), so it is taken as 5. 5.5, "5" and true are still refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _ints_take_whole_numbers(schema: Any) -> Any:
    """The same core schema, every strict int in it preceded by _whole_number."""
    if isinstance(schema, list):
        return [_ints_take_whole_numbers(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _ints_take_whole_numbers(value) for key, value in schema.items()}
    if schema.get("type") == "int":
        return core_schema.no_info_before_validator_function(_whole_number, schema)
    return schema


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    # strict: no coercion ("5" is not 5, true is not 1); dates and UUIDs are parsed from their text
    # (AwareDatetime, UuidValue). Request bodies are validated by the model's own config (app.py).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=1_000_000, strict=True)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel], handler: GetCoreSchemaHandler) -> CoreSchema:
        return _ints_take_whole_numbers(handler(source))  # type: ignore[no-any-return]


class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def format_id(type_: str, number: int) -> str:
    return f"{type_}-{number:03d}"
