"""``tracker-mcp``: serve the tracker's tools over stdio.

Fails fast, before serving anything, when ``TASK_TRACKING_API_KEY`` is missing. Logs go to
stderr; stdout carries only the MCP protocol.
"""

import logging
import sys

from .config import Config, ConfigError


def main() -> None:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        sys.stderr.write(f"tracker-mcp: {exc}\n")
        raise SystemExit(2) from None

    from . import calllog  # imported after the check: `import mcp` costs about a second
    from .client import TrackerClient
    from .server import build_server

    calllog.configure(logging.INFO)
    client = TrackerClient(config)
    logging.getLogger("mcp_tools").info("serving tools for %s (timeout %gs)", config.base_url, config.timeout)
    try:
        build_server(client).run("stdio")
    finally:
        client.close()


if __name__ == "__main__":
    main()
