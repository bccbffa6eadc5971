"""Typed request parameters shared by the controllers (explicit Litestar markers)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

ProjectQuery = Annotated[str | None, QueryParameter(description="Project name", max_length=100)]
ProjectIdQuery = Annotated[str | None, QueryParameter(description="Same as project (spec 001 name)", max_length=100)]
RefProject = Annotated[
    str | None, QueryParameter(name="project", description="Project of the task, when its key exists in several")
]
Limit = Annotated[
    int, QueryParameter(ge=1, le=1_000_000, description="Page size; capped by the server (default cap 200)")
]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000_000, description="Items to skip")]
TextQuery = Annotated[str | None, QueryParameter(max_length=200)]
TaskRefPath = Annotated[str, PathParameter(description="Task UUID or key (e.g. TASK-051)", max_length=64)]

# Route options (`opt=`) that change how the request middleware (web.middleware) runs a route.
# AUTOCOMMIT: the route's whole write is one SQL statement, so without an Idempotency-Key it runs
# in autocommit (no BEGIN/COMMIT round trips; row locks held for the statement only). With a key
# it runs in a transaction with the key's record. tests/service/test_single_statement.py holds
# every such route to one statement.
AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY = "autocommit_without_idempotency_key"
AUTOCOMMIT = {AUTOCOMMIT_WITHOUT_IDEMPOTENCY_KEY: True}
