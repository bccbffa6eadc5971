"""Typed request parameters shared by the controllers (explicit Litestar markers).

What a declaration says is both checked by Litestar and served in the OpenAPI document, so the
two cannot disagree. Where a handler checks a value itself (parse_uuid, one_of, a body model),
the declaration documents that check with `schema_extra` built from the same rule.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar.params import PathParameter, QueryParameter
from pydantic import TypeAdapter

from tracker_service.domain.common import NAME_PATTERN

# No query or path value may hold a NUL: PostgreSQL cannot compare text with one.
NO_NUL_PATTERN = r"^[^\x00]*$"

ProjectQuery = Annotated[str | None, QueryParameter(description="Project name", max_length=100, pattern=NAME_PATTERN)]
ProjectIdQuery = Annotated[
    str | None, QueryParameter(description="Same as project (spec 001 name)", max_length=100, pattern=NAME_PATTERN)
]
RefProject = Annotated[
    str | None,
    QueryParameter(
        name="project",
        description="Project of the task, when its key exists in several",
        max_length=100,
        pattern=NAME_PATTERN,
    ),
]
Limit = Annotated[
    int, QueryParameter(ge=1, le=1_000_000, description="Page size; capped by the server (default cap 200)")
]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000_000, description="Items to skip")]
TextQuery = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL_PATTERN)]
TaskRefPath = Annotated[
    str,
    PathParameter(description="Task UUID or key (e.g. TASK-051)", min_length=1, max_length=64, pattern=NO_NUL_PATTERN),
]


def uuid_path(description: str) -> Any:
    """A path segment holding a UUID, parsed by web.deps.parse_uuid (which says why it is not one):
    `Annotated[str, uuid_path("...")]`."""
    return PathParameter(description=description, schema_extra={"format": "uuid"})


def choices_query(allowed: tuple[str, ...], description: str) -> Any:
    """A filter of one or several comma-separated values (or none: empty), parsed by web.deps.one_of
    with the same `allowed`: `Annotated[str | None, choices_query(...)]`."""
    choice = "|".join(re.escape(value) for value in allowed)
    pattern = rf"^(?:(?:{choice})(?:,(?:{choice}))*)?$"
    return QueryParameter(description=f"{description}: {', '.join(allowed)}", schema_extra={"pattern": pattern})


def documented_as(type_: Any) -> dict[str, Any]:
    """schema_extra for a parameter a pydantic type checks in the handler: the type's own constraints."""
    schema = TypeAdapter(type_).json_schema()
    return {key: schema[key] for key in ("pattern", "minLength", "maxLength", "enum") if key in schema}


# Handler opt key: query parameters that are alternatives, one of which is required, e.g.
# @get("/next", opt=alternatives("project", "project_id")). The OpenAPI document groups them.
ALTERNATIVES = "query_alternatives"


def alternatives(*names: str) -> dict[str, tuple[str, ...]]:
    return {ALTERNATIVES: names}


# Route options (`opt=`) that change how the request middleware (web.middleware) runs a route.
# AUTOCOMMIT: the route's whole write is one SQL statement, so without an Idempotency-Key it runs
# in autocommit (no BEGIN/COMMIT round trips; row locks held for the statement only). With a key
# it runs in a transaction with the key's record. tests/service/test_single_statement.py holds
# every such route to one statement.
AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY = "autocommit_without_idempotency_key"
AUTOCOMMIT = {AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY: True}
# AUTOCOMMIT_WITH_KEY_RECORD: the route's one statement also writes the Idempotency-Key's record
# (idempotency.KeyedRequest), so even with a key it runs in autocommit: one round trip, the work
# and its record committed together; a repeat finds the record taken and answers from it.
KEY_RECORDED_IN_STATEMENT = "key_recorded_in_statement"
AUTOCOMMIT_WITH_KEY_RECORD = {AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY: True, KEY_RECORDED_IN_STATEMENT: True}
# TRANSACTION_WITH_KEY_RECORD: the route runs in a transaction as any write does (it may need more than
# its first statement: a status change settles parents), but that first statement writes the
# Idempotency-Key's record itself: BEGIN, work, COMMIT instead of also a key claim and a stored
# answer. A repeat finds the record taken, rolls back, and answers from it.
TRANSACTION_WITH_KEY_RECORD = {KEY_RECORDED_IN_STATEMENT: True}
