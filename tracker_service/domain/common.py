"""Field types shared by the domains' schemas."""

from __future__ import annotations

import json
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
    WithJsonSchema,
)
from pydantic_core import CoreSchema, core_schema

# Whitespace as Python's str.isspace() sees it, spelled out: the OpenAPI document's patterns are
# ECMA-262 regular expressions, whose \s differs from Python's (U+0085 is space to Python only,
# U+FEFF to ECMA only), so the served pattern and the validator use this one list.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Names and short texts: no whitespace at either end (nothing is trimmed silently: what is stored
# is what was sent), no control characters. The same pattern is served in the OpenAPI document.
NAME_PATTERN = rf"^[^{_SPACE}\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^{_SPACE}\x00-\x1f\x7f])?$"
# Free text on one or more lines: not blank, no whitespace at either end, and no NUL (which no
# request body may hold: web/body.py).
TEXT_PATTERN = rf"^[^{_SPACE}\x00](?:[^\x00]*[^{_SPACE}\x00])?$"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(NAME_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)


def _name(value: str) -> str:
    # The served pattern says the same; these messages say it in words.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if not _NAME.match(value):
        raise ValueError("must not start or end with whitespace")
    return value


def _text(value: str) -> str:
    if not _TEXT.match(value):
        raise ValueError("must not be blank" if value.isspace() else "must not start or end with whitespace")
    return value


# One-line names (no control characters, no whitespace at either end) and multi-line texts (not
# blank, no whitespace at either end), by length.
ProjectName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_name),
    Field(
        description="Project name (free text, unique within your tenant)",
        examples=["ai-agent-mcp-server"],
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
AgentName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_name),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
]
ShortName = Annotated[  # tags
    str,
    StringConstraints(min_length=1, max_length=50),
    AfterValidator(_name),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
]
Slug = Annotated[  # a handoff's subject
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_name),
    Field(
        description="Short slug naming what the handoff is about, e.g. sprint3-status-report",
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(_text),
    Field(json_schema_extra={"pattern": TEXT_PATTERN}),
]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


ID_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,19}$"
IdType = Annotated[
    str,
    # Upper-cased after the pattern (written for both cases, as served) has been checked.
    StringConstraints(pattern=ID_TYPE_PATTERN),
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


def unstorable_text(value: Any, root: str) -> tuple[str, str] | None:
    """The path (from `root`) of the first text or key PostgreSQL cannot store, and why: a NUL (not
    in text or jsonb) or a lone UTF-16 surrogate (not a character). None when all can be stored."""
    stack: list[tuple[Any, str]] = [(value, root)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            texts = list(item)
            stack.extend((v, k if path == root else f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            texts = []
            stack.extend((v, str(i) if path == root else f"{path}.{i}") for i, v in enumerate(item))
        else:
            texts = [item] if isinstance(item, str) else []
        for text in texts:
            if "\x00" in text:
                return path, "contains a NUL character (\\u0000), which cannot be stored"
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return path, "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character"
    return None


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
    # A time without a zone is taken as UTC rather than the server's local time. Kept in UTC: the
    # instant is the same, and PostgreSQL refuses offsets past 15:59 that ISO 8601 allows. A time
    # whose UTC equivalent leaves years 1-9999 could be stored but never read back: refused here.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None


# What AwareDatetime accepts, as served in the OpenAPI document: an ISO 8601 date (a real day of
# a year 0001-9999), optionally followed by a time (T, space or _; seconds and fractions optional)
# and a zone (Z or +-HH:MM, colon optional). "format: date-time" would say a zone is required and
# a date alone is refused. Not said by the pattern: a time within the zone's offset of year 1's
# first or year 9999's last midnight can be outside years 1-9999 in UTC, and is refused.
_YEAR = r"(?:[1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8]))"
)
_LEAP_YEAR = r"(?:\d{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_HH, _MM = r"(?:[01]\d|2[0-3])", r"[0-5]\d"
_TIME = rf"[Tt _]{_HH}:{_MM}(?::{_MM}(?:[.,]\d+)?)?(?:[Zz]|[+-]{_HH}:?{_MM})?"
ISO_DATETIME_PATTERN = rf"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)(?:{_TIME})?$"

AwareDatetime = Annotated[
    datetime,
    Strict(False),
    BeforeValidator(_iso_text),
    AfterValidator(_aware),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ISO_DATETIME_PATTERN,
            "description": "ISO 8601 date or date-time; without a zone it is UTC (2026-05-01, 2026-05-01T12:00:00Z)",
        }
    ),
]


def _uuid_text(value: Any) -> Any:
    if isinstance(value, UUID | str):
        return value
    raise ValueError("must be a UUID string")


# A UUID as "format: uuid" says it: 8-4-4-4-12 hex digits, any case.
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_PATTERN = rf"^{_UUID}$"
# The UUID texts a body's UuidValue accepts, as served: that form, also braced, as a urn:uuid: or
# as 32 digits without hyphens.
UUID_TEXT_PATTERN = rf"^(?:{_UUID}|\{{{_UUID}\}}|urn:uuid:{_UUID}|[0-9a-fA-F]{{32}})$"

UuidValue = Annotated[
    UUID,
    Strict(False),
    BeforeValidator(_uuid_text),
    WithJsonSchema({"type": "string", "pattern": UUID_TEXT_PATTERN, "description": "UUID"}),
]


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
        return _ints_take_whole_numbers(handler(source))


class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def format_id(type_: str, number: int) -> str:
    return f"{type_}-{number:03d}"
