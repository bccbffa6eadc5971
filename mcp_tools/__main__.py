"""``tracker-mcp``: serve the tracker's tools over stdio (default) or streamable HTTP.

Fails fast, before serving anything, on a bad command line or environment (stdio without
``TASK_TRACKING_API_KEY``, HTTP on every address without allowed host names). Logs go to stderr;
over stdio, stdout carries only the MCP protocol.
"""

import logging
import sys
from collections.abc import Sequence

from .config import Config, ConfigError


def main(argv: Sequence[str] | None = None) -> None:
    try:
        config = Config.from_env(args=sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        sys.stderr.write(f"tracker-mcp: {exc}\n")
        raise SystemExit(2) from None

    from . import calllog  # imported after the checks: `import mcp` costs about a second

    calllog.configure(logging.INFO)
    if config.transport == "streamable-http":
        from .http_server import serve

        serve(config)
        return

    from .client import TrackerClient
    from .server import build_server
    from .updates import ResourceSubscriptions, TrackerUpdates

    client = TrackerClient(config)
    logging.getLogger("mcp_tools").info(
        "serving tools for %s (timeout %gs; toolsets %s)", config.base_url, config.timeout, config.surface
    )
    try:
        updates = TrackerUpdates(config)
        build_server(client, config.surface, updates, ResourceSubscriptions(lambda: updates)).run("stdio")
    finally:
        client.close()


if __name__ == "__main__":
    main()
