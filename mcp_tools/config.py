"""Settings of the bridge, read once at start from the command line, the environment and a ``.env`` file.

A flag wins over its environment variable, which wins over ``.env``, which wins over the default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from dotenv import find_dotenv, load_dotenv

DEFAULT_URL = "http://localhost:8080"
DEFAULT_TIMEOUT = 5.0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766

Transport = Literal["stdio", "streamable-http"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "streamable-http")
#: Addresses that accept connections for any host name: DNS rebinding needs an allow-list there.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})


#: The tool areas, each a module of ``mcp_tools.toolsets``.
TOOLSETS: tuple[str, ...] = ("tasks", "ids", "handoffs", "activity")
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


class ConfigError(ValueError):
    """The command line or environment cannot start the bridge; the message says what to fix."""


@dataclass(frozen=True)
class Surface:
    """Which tools a client sees: some toolsets (default all), and optionally only the read-only tools.

    Set for the process by ``--toolsets``/``--read-only`` (or ``TASK_TRACKING_TOOLSETS`` and
    ``TASK_TRACKING_READ_ONLY``); over streamable HTTP a client narrows it further with the
    ``X-MCP-Toolsets`` and ``X-MCP-Readonly`` headers, never widens it.
    """

    toolsets: frozenset[str] = frozenset(TOOLSETS)
    read_only: bool = False

    @classmethod
    def parse(
        cls,
        toolsets: str | None = None,
        read_only: str | bool | None = None,
        names: tuple[str, str] = ("--toolsets", "--read-only"),
    ) -> Surface:
        """From a comma-separated list (``all`` or empty: every toolset) and a yes/no.

        ``names`` are where each came from, for the ConfigError that says what is malformed.
        """
        chosen = {name.strip().lower() for name in (toolsets or "").split(",") if name.strip()}
        if not chosen or "all" in chosen:
            chosen = set(TOOLSETS)
        unknown = sorted(chosen - set(TOOLSETS))
        if unknown:
            raise ConfigError(
                f"{names[0]}: unknown toolset {', '.join(unknown)}; choose from {', '.join(TOOLSETS)}, or all"
            )
        return cls(frozenset(chosen), _flag(read_only, names[1]))

    def narrowed(self, other: Surface) -> Surface:
        """What both allow."""
        return Surface(self.toolsets & other.toolsets, self.read_only or other.read_only)

    def __str__(self) -> str:
        names = ",".join(name for name in TOOLSETS if name in self.toolsets) or "none"
        return f"{names}{' (read-only)' if self.read_only else ''}"


def _flag(value: str | bool | None, name: str) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class Config:
    """Where the tracker is, how to talk to it, and how to serve MCP.

    ``api_key`` is set in stdio mode only: over streamable HTTP each client sends its own key.
    """

    api_key: str | None = None
    base_url: str = DEFAULT_URL
    timeout: float = DEFAULT_TIMEOUT
    transport: Transport = "stdio"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allowed_hosts: tuple[str, ...] = ()
    surface: Surface = Surface()
    # OAuth (mcp_tools.oauth): this bridge's /mcp as clients reach it, and the tracker as browsers
    # reach it (the authorization server); defaults: the bound address, and TASK_TRACKING_URL.
    public_url: str | None = None
    authorization_url: str | None = None

    @property
    def resource_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = self.host if self.host not in WILDCARD_HOSTS else (self.allowed_hosts or ("127.0.0.1",))[0]
        host = f"[{host}]" if host.count(":") > 1 and not host.startswith("[") else host
        return f"http://{host}:{self.port}/mcp"

    @property
    def authorization_server(self) -> str:
        return self.authorization_url or self.base_url

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback
        key = "***" if self.api_key else None
        return (
            f"Config(base_url={self.base_url!r}, timeout={self.timeout!r}, api_key={key!r}, "
            f"transport={self.transport!r}, host={self.host!r}, port={self.port!r}, "
            f"allowed_hosts={self.allowed_hosts!r}, surface={self.surface!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> Config:
        """Build from ``args`` (the command line, without the program name) and ``env``.

        ``env`` defaults to ``os.environ`` after loading ``.env`` without overriding it. Raises
        ConfigError when a value is malformed, when stdio mode has no ``TASK_TRACKING_API_KEY``, or
        when the bridge would listen on every address without a list of allowed host names.
        """
        flags = _parser().parse_args(list(args))
        if env is None:
            load_dotenv(find_dotenv(usecwd=True), override=False)
            env = os.environ

        transport = (flags.transport or env.get("TRACKER_MCP_TRANSPORT") or "stdio").strip()
        if transport not in TRANSPORTS:
            raise ConfigError(f"TRACKER_MCP_TRANSPORT must be stdio or streamable-http, got {transport!r}")
        base_url = (env.get("TASK_TRACKING_URL") or DEFAULT_URL).strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"TASK_TRACKING_URL must start with http:// or https://, got {base_url!r}")
        timeout = _positive(env.get("TASK_TRACKING_TIMEOUT") or str(DEFAULT_TIMEOUT))
        surface = Surface.parse(
            flags.toolsets if flags.toolsets is not None else env.get("TASK_TRACKING_TOOLSETS"),
            flags.read_only or env.get("TASK_TRACKING_READ_ONLY"),
            (
                "--toolsets" if flags.toolsets is not None else "TASK_TRACKING_TOOLSETS",
                "--read-only" if flags.read_only else "TASK_TRACKING_READ_ONLY",
            ),
        )

        if transport == "stdio":
            api_key = env.get("TASK_TRACKING_API_KEY", "").strip()
            if not api_key:
                raise ConfigError("TASK_TRACKING_API_KEY environment variable not set")
            return cls(api_key=api_key, base_url=base_url, timeout=timeout, surface=surface)

        # Over HTTP a key set for the process is deliberately not used: a client that sends no key
        # must get a 401, never the operator's tenant.
        host = (flags.host or env.get("TRACKER_MCP_HOST") or DEFAULT_HOST).strip()
        port = _port(str(flags.port) if flags.port is not None else env.get("TRACKER_MCP_PORT") or str(DEFAULT_PORT))
        named = flags.allowed_hosts if flags.allowed_hosts else env.get("TRACKER_MCP_ALLOWED_HOSTS", "").split(",")
        allowed_hosts = tuple(dict.fromkeys(h.strip() for h in named if h.strip()))
        if host in WILDCARD_HOSTS and not allowed_hosts:
            raise ConfigError(
                f"refusing to listen on {host} without allowed host names: any web page could reach the bridge "
                "through DNS rebinding. Name the host names clients use, e.g. --allowed-host tracker.example.com "
                "(repeatable) or TRACKER_MCP_ALLOWED_HOSTS=tracker.example.com,10.0.0.5"
            )
        public_url = _http_url(flags.public_url or env.get("TRACKER_MCP_PUBLIC_URL"), "TRACKER_MCP_PUBLIC_URL")
        authorization_url = _http_url(env.get("TRACKER_MCP_AUTHORIZATION_URL"), "TRACKER_MCP_AUTHORIZATION_URL")
        return cls(
            base_url=base_url,
            timeout=timeout,
            transport=cast(Transport, transport),
            host=host,
            port=port,
            allowed_hosts=allowed_hosts,
            surface=surface,
            public_url=public_url,
            authorization_url=authorization_url,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker-mcp",
        description="MCP server whose tools call the task tracker's REST API (TASK_TRACKING_URL).",
        epilog="stdio needs TASK_TRACKING_API_KEY; over streamable-http each client sends "
        "'Authorization: Bearer <key>' to /mcp.",
    )
    parser.add_argument("--transport", choices=TRANSPORTS, help="default stdio (env TRACKER_MCP_TRANSPORT)")
    parser.add_argument("--host", help=f"streamable-http: address to bind, default {DEFAULT_HOST} (TRACKER_MCP_HOST)")
    parser.add_argument("--port", type=int, help=f"streamable-http: default {DEFAULT_PORT} (TRACKER_MCP_PORT)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="HOST",
        help="streamable-http: a Host header to accept besides loopback names, repeatable; required with "
        "--host 0.0.0.0 (TRACKER_MCP_ALLOWED_HOSTS, comma-separated)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="streamable-http: the /mcp URL clients reach, the OAuth resource tokens are bound to "
        "(TRACKER_MCP_PUBLIC_URL; default http://HOST:PORT/mcp)",
    )
    parser.add_argument(
        "--toolsets",
        metavar="LIST",
        help=f"comma-separated tool areas to offer: {','.join(TOOLSETS)} or all (default; TASK_TRACKING_TOOLSETS)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=None,
        help="offer only the tools that change nothing (TASK_TRACKING_READ_ONLY=true)",
    )
    return parser


def _http_url(raw: str | None, name: str) -> str | None:
    value = (raw or "").strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://, got {value!r}")
    return value or None


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(f"TASK_TRACKING_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return value


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"TRACKER_MCP_PORT must be a port number (1-65535), got {raw!r}")
    return port
