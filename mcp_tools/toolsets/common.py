"""What the toolsets share: the catalogue they add tools to, annotation presets, parameter types.

A parameter's ``Field(description=...)`` is what the model reads, so each type is defined
once here and reused, which keeps wording consistent and ``tools/list`` small.

Every schema is generated from the code, then made lean by ``lean_schema``: pydantic's ``title``s
(the field name again), ``default: null``, and the ``anyOf: [X, {type: null}]`` of optional
parameters (leaving one out is how a caller says "none") go, and so do ``minLength: 1`` and
``additionalProperties: true``. That takes a third off ``tools/list``; the argument models still accept an
explicit null and still refuse an empty string.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import Field

from ..calllog import logged
from ..config import Surface

F = TypeVar("F", bound=Callable[..., Any])


#: Keywords that say what the rest of the schema implies, or what the argument models check anyway:
#: an empty string is refused with a clear message whether the schema says minLength 1 or not.
_IMPLIED: dict[str, Any] = {"minLength": 1, "additionalProperties": True}
_ABSENT = object()


def lean_schema(schema: Any) -> Any:
    """The same JSON Schema without titles, null defaults, and the null branch of optional properties.

    An optional property may be left out, which is how a caller (or an answer) says "none"; a
    required one that may be null keeps its null (``NextTask.task``).
    """
    if isinstance(schema, list):
        return [lean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    required = set(schema.get("required", ()))
    for key, value in schema.items():
        if key == "title" or (key == "default" and value is None) or _IMPLIED.get(key, _ABSENT) == value:
            continue
        if key == "properties":
            out[key] = {
                name: lean_schema(sub if name in required else _without_null(sub)) for name, sub in value.items()
            }
        elif key == "$defs":
            out[key] = {name: lean_schema(sub) for name, sub in value.items()}
        else:
            out[key] = lean_schema(value)
    return out


def inline_single_refs(schema: Any) -> Any:
    """The schema with each model used once written in place: ``$defs`` and a ``$ref`` cost about 40
    characters more than the model itself. A model used twice (``Dependency``) stays shared.
    """
    if not schema or "$defs" not in schema:
        return schema
    text = json.dumps(schema)
    defs: dict[str, Any] = schema["$defs"]
    once = {name for name in defs if text.count(f'"#/$defs/{name}"') == 1}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref", "")
        name = ref.removeprefix("#/$defs/")
        if ref.startswith("#/$defs/") and name in once:
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return {**walk(defs[name]), **rest}
        return {key: walk(value) for key, value in node.items() if key != "$defs"}

    out: dict[str, Any] = walk(schema)
    kept = {name: walk(model) for name, model in defs.items() if name not in once}
    if kept:
        out = {"$defs": kept, **out}
    return out


def _without_null(schema: Any) -> Any:
    """``anyOf: [X, {type: null}]`` as X (keeping the description and the rest beside it)."""
    branches = schema.get("anyOf") if isinstance(schema, dict) else None
    if not isinstance(branches, list):
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(branches):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **rest}


@dataclass
class Entry:
    """One tool as the catalogue holds it; ``twin`` is a read-only stand-in for a writer of the same name."""

    toolset: str
    tool: Tool
    twin: bool = False

    @property
    def read_only(self) -> bool:
        return bool(self.tool.annotations and self.tool.annotations.read_only_hint)


@dataclass
class Catalogue:
    """Every tool and resource of every toolset, built once; servers are assembled from a selection."""

    entries: list[Entry] = field(default_factory=list)
    resources: list[tuple[str, Callable[[MCPServer], None]]] = field(default_factory=list)

    def tool(self, toolset: str, annotations: ToolAnnotations, *, twin: str | None = None) -> Callable[[F], F]:
        """Add a sync function as a logged tool with structured output, explicit hints and lean schemas.

        ``twin``: the name of a writer this function stands in for, read-only, when the surface is
        read-only (``get_next_task`` without ``claim``).
        """

        def decorator(fn: F) -> F:
            if twin:
                fn.__name__ = twin  # log lines name the tool as the client called it
            tool = Tool.from_function(
                logged(fn),
                description=inspect.cleandoc(fn.__doc__ or ""),
                annotations=annotations,
                structured_output=True,
            )
            tool.parameters = inline_single_refs(lean_schema(tool.parameters))
            tool.fn_metadata.output_schema = inline_single_refs(lean_schema(tool.fn_metadata.output_schema))
            self.entries.append(Entry(toolset, tool, twin is not None))
            return fn

        return decorator

    def select(self, surface: Surface) -> list[Tool]:
        """The tools ``surface`` offers: its toolsets' tools; when read-only, the read-only ones and twins."""
        return [
            entry.tool
            for entry in self.entries
            if entry.toolset in surface.toolsets and (entry.read_only if surface.read_only else not entry.twin)
        ]

    def refusal(self, surface: Surface, name: str, arguments: dict[str, Any]) -> str | None:
        """Why ``surface`` refuses this call, or None when it allows it (or does not know the tool)."""
        entries = [entry for entry in self.entries if entry.tool.name == name]
        if not entries:
            return None  # the server answers "Unknown tool"
        offered = {tool.name: tool for tool in self.select(surface)}
        if name not in offered:
            if entries[0].toolset not in surface.toolsets:
                return (
                    f"{name} is in the {entries[0].toolset} toolset, which this connection does not offer "
                    f"(toolsets: {surface}); see --toolsets, TASK_TRACKING_TOOLSETS or the X-MCP-Toolsets header"
                )
            return (
                f"{name} changes data and this connection is read-only "
                "(--read-only, TASK_TRACKING_READ_ONLY or the X-MCP-Readonly header)"
            )
        taken = set(offered[name].parameters.get("properties", {}))
        elsewhere = {param for entry in entries for param in entry.tool.parameters.get("properties", {})} - taken
        refused = sorted(elsewhere & set(arguments))
        if refused:
            return f"{name}: {', '.join(refused)} cannot be used on this read-only connection; call it without"
        return None

    def resource(self, toolset: str, uri: str, **options: Any) -> Callable[[F], F]:
        """Add a resource template, registered on each server whose surface has ``toolset``."""

        def decorator(fn: F) -> F:
            def add(server: MCPServer) -> None:
                server.resource(uri, **options)(fn)

            self.resources.append((toolset, add))
            return fn

        return decorator


def hints(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    """Every hint decided, and sent only where it differs from the spec's default (readOnlyHint
    false, destructiveHint true, idempotentHint false, openWorldHint true), which says the same in
    fewer characters. The tracker is a closed system: never open-world. A read-only tool sends no
    destructive or idempotent hint: the spec gives them meaning only for tools that write.
    """
    chosen: dict[str, bool] = {"open_world_hint": False}
    if read_only:
        chosen["read_only_hint"] = True
    else:
        if not destructive:
            chosen["destructive_hint"] = False
        if idempotent:
            chosen["idempotent_hint"] = True
    return ToolAnnotations(**chosen)


READ = hints(read_only=True, idempotent=True)
CREATE = hints()
UPDATE = hints(idempotent=True)
OVERWRITE = hints(destructive=True, idempotent=True)

TaskStatus = Literal["pending", "in_progress", "blocked", "in_review", "completed", "failed", "cancelled", "done"]
Priority = Literal["critical", "high", "medium", "low"]

ProjectId = Annotated[str, Field(min_length=1)]
#: A list filter named after the field it matches: its name says it all.
Filter = str | None
# Said once, in the server's instructions (guidance.CONVENTIONS), rather than on every parameter:
#: a filter the tracker matches exactly; "a,b" matches either value.
AnyOf = str | None
#: a task's key (TASK-051) or UUID; a key two projects share is refused with both UUIDs.
TaskRef = Annotated[str, Field(min_length=1)]
Limit = Annotated[int, Field(ge=1, le=200)]
#: a list's next_cursor, for its next page.
Cursor = str | None
#: ISO 8601.
Since = str | None

Title = Annotated[str | None, Field(max_length=500)]
Description = str | None  # markdown (guidance.CONVENTIONS)
Assignee = str | None  # an agent or a person (guidance.CONVENTIONS)
Tags = Annotated[list[str] | None, Field(description="Replaces the list.")]
Notes = str | None
Inputs = Any
Outputs = Any
DueDate = str | None  # ISO 8601
# Said once in the instructions (guidance.CONVENTIONS): keys of tasks to complete first; a task of
# the same project.
DependsOn = list[str] | None
Parent = str | None
HandoffRef = str | None  # a handoff's UUID: its name says so
