"""Field types shared by the domains' schemas."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


ProjectName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_plain_text),
    Field(description="Project name (free text, unique within your tenant)", examples=["ai-agent-mcp-server"]),
]
AgentName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_plain_text),
]


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


IdType = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,19}$"),
    Field(description="Artifact type: letters, digits, underscore; upper-cased (US, SPEC, TASK)", examples=["US"]),
]


def _aware(value: datetime | None) -> datetime | None:
    # A time without a zone is taken as UTC rather than the server's local time.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=1_000_000)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store U+0000 in text or jsonb; say so instead of failing at the database.
        if path := _nul_path(data, ()):
            raise ValueError(f"{'.'.join(path) or 'body'} contains a NUL character (\\u0000), which cannot be stored")
        return data


def _nul_path(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return (*path, key.replace("\x00", "?"))
        if (found := _nul_path(item, (*path, str(key)))) is not None:
            return found
    return None


class OutModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def format_id(type_: str, number: int) -> str:
    return f"{type_}-{number:03d}"
