"""The tools one request may see and call: the process's surface, narrowed by the client's headers.

Over streamable HTTP one bridge serves every client, so a client picks its surface with headers on
each request, as GitHub's MCP server does: ``X-MCP-Toolsets: tasks,handoffs`` and
``X-MCP-Readonly: true``. They narrow what the process offers (``--toolsets``, ``--read-only``),
never widen it. ``tools/list`` then lists that surface, and ``tools/call`` refuses a tool outside
it, or an argument only its writing variant takes (``claim`` of ``get_next_task`` on a read-only
surface), with a message saying why; everything else passes through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, ListToolsResult, TextContent, Tool

from .config import ConfigError, Surface
from .toolsets.common import Catalogue

TOOLSETS_HEADER = "X-MCP-Toolsets"
READ_ONLY_HEADER = "X-MCP-Readonly"


def requested(headers: Mapping[str, str] | None) -> Surface | None:
    """The surface a request's headers ask for, or None when they ask for nothing."""
    if headers is None:
        return None
    toolsets, read_only = headers.get(TOOLSETS_HEADER), headers.get(READ_ONLY_HEADER)
    if toolsets is None and read_only is None:
        return None
    return Surface.parse(toolsets, read_only, (TOOLSETS_HEADER, READ_ONLY_HEADER))


class SurfaceGate:
    """Server middleware applying the surface of each ``tools/list`` and ``tools/call``."""

    def __init__(self, tools: Catalogue, surface: Surface) -> None:
        self._tools = tools
        self._surface = surface

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method not in ("tools/list", "tools/call"):
            return await call_next(ctx)
        try:
            asked = requested(getattr(ctx.request, "headers", None))
        except ConfigError as exc:
            if ctx.method == "tools/list":
                raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
            return _refused(str(exc))
        surface = self._surface if asked is None else self._surface.narrowed(asked)
        if ctx.method == "tools/list":
            if surface == self._surface:
                return await call_next(ctx)
            return ListToolsResult(tools=[_listed(tool) for tool in self._tools.select(surface)])
        params = ctx.params or {}
        arguments = params.get("arguments")
        refusal = self._tools.refusal(
            surface, str(params.get("name")), arguments if isinstance(arguments, dict) else {}
        )
        return _refused(refusal) if refusal else await call_next(ctx)


def _listed(tool: Any) -> Tool:
    """A registered tool as ``tools/list`` shows it (as ``MCPServer.list_tools`` does)."""
    return Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.parameters,
        output_schema=tool.output_schema,
        annotations=tool.annotations,
        icons=tool.icons,
        _meta=tool.meta,
    )


def _refused(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
