"""What the toolsets share: the registration helper, annotation presets, parameter types.

A parameter's ``Field(description=...)`` is what the model reads, so each type is defined
once here and reused, which keeps wording consistent and ``tools/list`` small.
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from ..calllog import logged

F = TypeVar("F", bound=Callable[..., Any])


def tool(server: MCPServer, annotations: ToolAnnotations) -> Callable[[F], F]:
    """Register a sync function as a logged tool with structured output and explicit hints."""

    def decorator(fn: F) -> F:
        description = inspect.cleandoc(fn.__doc__ or "")
        server.add_tool(logged(fn), description=description, annotations=annotations, structured_output=True)
        return fn

    return decorator


def hints(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    """All four hints, always set (the tracker is a closed system: never open-world)."""
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


READ = hints(read_only=True, idempotent=True)
CREATE = hints()
UPDATE = hints(idempotent=True)
OVERWRITE = hints(destructive=True, idempotent=True)

TaskStatus = Literal["pending", "in_progress", "blocked", "in_review", "completed", "failed", "cancelled", "done"]
Priority = Literal["critical", "high", "medium", "low"]

ProjectId = Annotated[str, Field(min_length=1, description="Project name, e.g. 'ai-agent-mcp-server'.")]
ProjectFilter = Annotated[str | None, Field(description="Only this project.")]
TaskRef = Annotated[str, Field(min_length=1, description="Task key (e.g. 'TASK-051') or UUID.")]
KeyProject = Annotated[
    str | None, Field(description="Project of task_id; needed only if that key exists in several projects.")
]
Limit = Annotated[int, Field(ge=1, le=200, description="Page size.")]
Offset = Annotated[int, Field(ge=0, description="Items to skip (next_offset of the previous page).")]
Since = Annotated[str | None, Field(description="Only after this ISO 8601 time.")]

Title = Annotated[str | None, Field(max_length=500, description="Short title.")]
Description = Annotated[str | None, Field(description="What to do, markdown.")]
Assignee = Annotated[str | None, Field(description="Agent or person, e.g. 'cc'.")]
Tags = Annotated[list[str] | None, Field(description="Labels; replaces the existing list.")]
Notes = Annotated[str | None, Field(description="Free-form notes.")]
Inputs = Annotated[Any, Field(description="What the task consumes (any JSON).")]
Outputs = Annotated[Any, Field(description="What the task must produce (any JSON).")]
DueDate = Annotated[str | None, Field(description="ISO 8601 date or time.")]
DependsOn = Annotated[list[str] | None, Field(description="Keys or UUIDs of tasks that must complete first.")]
Parent = Annotated[str | None, Field(description="Key or UUID of the parent task (same project).")]
HandoffRef = Annotated[str | None, Field(description="UUID of a related handoff.")]
