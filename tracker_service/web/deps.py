"""Dependency providers: services bound to the request's connection and caller."""

from __future__ import annotations

import re
from uuid import UUID

from litestar import Request
from pydantic import TypeAdapter, ValidationError

from tracker_service.domain.common import UUID_PATTERN, ProjectName
from tracker_service.domain.events.service import EventLog
from tracker_service.domain.handoffs.service import HandoffService
from tracker_service.domain.ids.service import IdRegistry
from tracker_service.domain.projects.service import ProjectService
from tracker_service.domain.tasks.service import TaskService
from tracker_service.domain.transfer.service import TransferService
from tracker_service.errors import InvalidRequest

_PROJECT: TypeAdapter[str] = TypeAdapter(ProjectName)


def provide_tasks(request: Request) -> TaskService:
    state = request.scope["state"]  # set by RequestContext
    return TaskService(state["conn"], state["principal"], request.app.state.settings, state.get("keyed_request"))


def provide_handoffs(request: Request) -> HandoffService:
    state = request.scope["state"]
    return HandoffService(state["conn"], state["principal"], request.app.state.settings)


def provide_event_log(request: Request) -> EventLog:
    state = request.scope["state"]
    return EventLog(state["conn"], state["principal"].tenant)


def provide_ids(request: Request) -> IdRegistry:
    state = request.scope["state"]
    return IdRegistry(state["conn"], state["principal"])


def provide_projects(request: Request) -> ProjectService:
    state = request.scope["state"]
    return ProjectService(state["conn"], state["principal"])


def provide_transfer(request: Request) -> TransferService:
    state = request.scope["state"]
    return TransferService(state["conn"], state["principal"])


def parse_project(value: str) -> str:
    """A project name given in a path, held to the same rule as in a body."""
    try:
        return _PROJECT.validate_python(value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidRequest(
            f"project: {message}", errors=[{"field": "project", "message": message, "source": "path"}]
        ) from None


_UUID = re.compile(UUID_PATTERN)


def parse_uuid(name: str, value: str) -> UUID:
    """A path's UUID, in the one form the OpenAPI document names (format: uuid, 8-4-4-4-12 hex digits);
    UUID() alone would also take braces, a urn:uuid: prefix and hyphens anywhere."""
    if not _UUID.fullmatch(value):
        raise InvalidRequest(
            f"{name}: {value!r} is not a UUID (8-4-4-4-12 hex digits)",
            errors=[{"field": name, "message": "must be a UUID", "source": "path"}],
        )
    return UUID(value)


def uuid_or_none(value: str) -> UUID | None:
    return UUID(value) if _UUID.fullmatch(value) else None


def page_limit(request: Request, limit: int) -> int:
    """Clamp `limit` to the configured maximum (the documented cap)."""
    return min(limit, request.app.state.settings.list_limit_max)


def one_of(name: str, value: str | None, allowed: tuple[str, ...], aliases: dict[str, str] | None = None) -> list[str]:
    """Parse a comma-separated filter such as status=pending,in_progress."""
    if value is None or value == "":
        return []
    # Each value once: a filter repeating one value thousands of times must cost what it says once.
    items = list(dict.fromkeys((aliases or {}).get(v, v) for v in value.split(",")))
    bad = [v for v in items if v not in allowed]
    if bad:
        raise InvalidRequest(
            f"{name}: {', '.join(bad)} is not one of {', '.join(allowed)}",
            errors=[{"field": name, "message": f"must be one of {', '.join(allowed)}", "source": "query"}],
        )
    return items


def just_one(name: str, values: list[str]) -> str | None:
    """A filter that takes a single value (one_of's list of at most one)."""
    if len(values) > 1:
        raise InvalidRequest(
            f"{name}: give one value, not {', '.join(values)}",
            errors=[{"field": name, "message": "takes one value", "source": "query"}],
        )
    return values[0] if values else None
