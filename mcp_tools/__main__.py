"""``tracker-mcp``: serve the tracker's tools over stdio (default) or streamable HTTP.

Fails fast, before serving anything, on a bad command line or environment (stdio without
``TASK_TRACKING_API_KEY``, HTTP on every address without allowed host names). Logs go to stderr;
over stdio, stdout carries only the MCP protocol.
"""

import gc
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

        gc.freeze()  # see below; the imports are most of it
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
        server = build_server(client, config.surface, updates, ResourceSubscriptions(lambda: updates))
        # What imports and the tool surface leave (~95,000 objects) lives as long as the process;
        # out of the collector's sight, a full collection no longer stalls a tool call for 40-60 ms.
        gc.freeze()
        server.run("stdio")
    finally:
        client.close()


if __name__ == "__main__":
    main()
