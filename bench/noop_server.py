"""Floor for an MCP tool call over stdio: one trivial tool, registered the way tracker-mcp registers
its tools (a sync function with structured output, run by the SDK in a worker thread).

Run as ``python -m bench.noop_server`` (or by path); it serves stdio until stdin closes.
"""

from __future__ import annotations

import logging
import sys

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel


class Pong(BaseModel):
    ok: bool


def build() -> MCPServer:
    server = MCPServer("noop")

    def noop(value: str = "") -> Pong:
        """Do nothing and say so."""
        return Pong(ok=True)

    server.add_tool(noop, description="Do nothing.", structured_output=True)
    return server


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    build().run("stdio")


if __name__ == "__main__":
    main()
