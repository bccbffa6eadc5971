"""Settings, read once at the edge (CLI or test), never at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("agent-tracker"))


@dataclass(frozen=True)
class Settings:
    # None means: start the embedded PostgreSQL in data_dir.
    database_url: str | None = None
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Base URL that clients reach the tracker at; used in printed hints and public links.
    public_url: str | None = None
    max_body_bytes: int = 1024 * 1024
    # Requests per minute per API key; 0 turns the limiter off.
    rate_limit_per_minute: int = 6000
    # Failed API key checks per minute per client address, after which they get 429; 0: no limit.
    auth_failures_per_minute: int = 60
    default_lease_seconds: int = 900
    default_reservation_ttl_seconds: int = 3600
    list_limit_max: int = 200
    pool_size: int = 10
    # Server processes sharing the port (each with its own pool of pool_size connections). The tracker
    # keeps no state in memory that must be shared, so this is the way to use more than one core.
    workers: int = 1
    # How long a checked API key is remembered (each change to api_keys empties the cache at once,
    # and nothing is cached while the database's change notifications cannot be heard); 0: never.
    auth_cache_seconds: int = 60
    log_level: str = "info"
    # Serve handoff markdown at /handoffs/{id}/content without a key (for web agents).
    public_content: bool = True
    # How often lapsed leases and expired handoffs are swept (and other housekeeping runs).
    sweep_interval_seconds: int = 5
    # Project of delegated tasks that name none in options.project.
    delegation_project: str = "delegated"
    # Serve Prometheus metrics at /metrics (no key, like /health).
    metrics: bool = True
    # text or json (one JSON object per line, with the request id).
    log_format: str = "text"
    # How long a board sign-in lasts (hours); revoking its key ends it sooner, at once.
    board_session_hours: int = 12
    # Event streams (/events, /ws) one key may hold open per process; 0: no limit.
    streams_per_key: int = 100
    # Users from an identity provider: bearer JWTs from this issuer (and for this audience) are
    # accepted beside API keys, each user in a tenant of its own (jwt_tenant_prefix + sub).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Where the issuer's signing keys are (default: <issuer>/.well-known/jwks.json).
    jwt_jwks_url: str | None = None
    jwt_role: str = "write"
    jwt_tenant_prefix: str = "user:"
    # OAuth 2.1 for MCP clients (domain.oauth): the MCP servers' URLs tokens may be issued for, comma
    # separated (any URL on this machine is always allowed), and how long tokens last.
    oauth_resources: str | None = None
    oauth_access_minutes: int = 60
    oauth_refresh_days: int = 30
    # Accept clients identified by the URL of their metadata document (Claude Code's way); off for
    # a tracker that cannot reach the clients' sites: they then register (RFC 7591).
    oauth_client_documents: bool = True
    # A copy of every change in an object store (tracker_service.backup): file:///path,
    # s3://bucket/prefix or gs://bucket/prefix (pip install 'agent-tracker[backup]'); unset: off.
    backup_url: str | None = None
    # The S3 endpoint of an S3-compatible store other than AWS (MinIO, Ceph, R2...).
    backup_endpoint_url: str | None = None
    # /health says `backup: lagging` once the oldest change not yet copied is older than this.
    backup_lag_seconds: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from TRACKER_* variables; explicit overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"TRACKER_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or default_data_dir()

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def _coerce(name: str, type_name: object, raw: str) -> object:
    text = str(type_name)
    if text.startswith("bool"):
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise SystemExit(f"TRACKER_{name.upper()} must be true or false, got {raw!r}")
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("Path"):
            return Path(raw).expanduser()
    except ValueError as exc:
        raise SystemExit(f"TRACKER_{name.upper()} must be an integer, got {raw!r}") from exc
    return raw
