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
