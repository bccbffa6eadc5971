"""Settings of the bridge, read once at start from the environment (and a ``.env`` file)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dotenv import find_dotenv, load_dotenv

DEFAULT_URL = "http://localhost:8080"
DEFAULT_TIMEOUT = 5.0


class ConfigError(ValueError):
    """The environment cannot start the bridge; the message says which variable to fix."""


@dataclass(frozen=True)
class Config:
    """Where the tracker is and how to talk to it."""

    api_key: str
    base_url: str = DEFAULT_URL
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback
        return f"Config(base_url={self.base_url!r}, timeout={self.timeout!r}, api_key='***')"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build from ``env`` (default: ``os.environ`` after loading ``.env`` without overriding it).

        Raises ConfigError when ``TASK_TRACKING_API_KEY`` is unset or a value is malformed.
        """
        if env is None:
            load_dotenv(find_dotenv(usecwd=True), override=False)
            env = os.environ
        api_key = env.get("TASK_TRACKING_API_KEY", "").strip()
        if not api_key:
            raise ConfigError("TASK_TRACKING_API_KEY environment variable not set")
        base_url = (env.get("TASK_TRACKING_URL") or DEFAULT_URL).strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"TASK_TRACKING_URL must start with http:// or https://, got {base_url!r}")
        raw_timeout = env.get("TASK_TRACKING_TIMEOUT") or str(DEFAULT_TIMEOUT)
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = 0.0
        if timeout <= 0:
            raise ConfigError(f"TASK_TRACKING_TIMEOUT must be a positive number of seconds, got {raw_timeout!r}")
        return cls(api_key=api_key, base_url=base_url, timeout=timeout)
