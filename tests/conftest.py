"""Shared fixtures: one embedded PostgreSQL per test session, a real `tracker serve` process on it,
and a fresh tenant (with its own API keys) per test, so tests share a database without sharing data."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from tracker_service import embedded
from tracker_service.db.engine import migrate, normalize_url
from tracker_service.domain.keys.service import create_key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database on the session's embedded PostgreSQL (the same package `tracker serve` uses)."""
    # A short path keeps the unix socket path under its length limit.
    data_dir = Path(f"/tmp/trk-test-{os.getpid()}")
    url = embedded.start(data_dir, database="tracker_test", delete_on_exit=True)
    migrate(url)
    return url


@pytest.fixture(scope="session")
def db(pg_url: str):  # type: ignore[no-untyped-def]
    engine = create_engine(normalize_url(pg_url))
    yield engine
    engine.dispose()


class TrackerProcess:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_tracker(env_overrides: dict[str, str], log: Path, port: int | None = None) -> TrackerProcess:
    port = port or free_port()
    env = {
        **os.environ,
        "TRACKER_PORT": str(port),
        "TRACKER_LOG_LEVEL": "warning",
        "TRACKER_DATA_DIR": str(log.parent / "data"),
        **env_overrides,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracker_service", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tracker exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return TrackerProcess(url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"tracker did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="session")
def spawn_tracker(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., TrackerProcess]]:
    """Start extra `tracker serve` processes on the session database with other settings."""
    started: list[TrackerProcess] = []

    def spawn(**env: str) -> TrackerProcess:
        log = tmp_path_factory.mktemp("tracker") / "tracker.log"
        proc = start_tracker({"TRACKER_DATABASE_URL": pg_url, **env}, log)
        started.append(proc)
        return proc

    yield spawn
    for p in started:
        p.stop()


@pytest.fixture(scope="session")
def tracker_url(spawn_tracker: Callable[..., TrackerProcess]) -> str:
    """Base URL of a real `tracker serve` process on the session database."""
    return spawn_tracker().url


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_key(db, tenant: str) -> Callable[..., str]:  # type: ignore[no-untyped-def]
    def make(role: str = "write", tenant_name: str | None = None, name: str | None = None) -> str:
        with db.begin() as conn:
            key, _ = create_key(
                conn, name=name or f"{role}-{uuid.uuid4().hex[:6]}", tenant=tenant_name or tenant, role=role
            )
        return key

    return make


@pytest.fixture
def api_key(make_key: Callable[..., str]) -> str:
    """A write-role key in a fresh tenant."""
    return make_key("write")


def client_for(base_url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


@pytest.fixture
def api(tracker_url: str, api_key: str) -> Iterator[httpx.Client]:
    """An HTTP client of the tracker, authenticated as a fresh tenant's write key."""
    with client_for(tracker_url, api_key) as c:
        yield c


@pytest.fixture
def project() -> str:
    return f"proj-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def app_with(pg_url: str) -> Iterator[Callable[..., Any]]:
    """The tracker in this process with some settings changed: `app_with(metrics=False, key=K)`
    is a Litestar test client (an httpx client) of `create_app(Settings(...))`, started and
    stopped with the test. Cheaper than a whole `tracker serve` for one setting."""
    from litestar.testing import TestClient

    from tracker_service.app import create_app
    from tracker_service.settings import Settings

    clients: list[Any] = []

    def build(key: str | None = None, **settings: Any) -> Any:
        base = {"database_url": pg_url, "sweep_interval_seconds": 3600, "rate_limit_per_minute": 0}
        client = TestClient(create_app(Settings(**{**base, **settings})))
        client.__enter__()
        clients.append(client)
        if key:
            client.headers["Authorization"] = f"Bearer {key}"
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)
