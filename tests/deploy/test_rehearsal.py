"""A rehearsal of `docker compose up` without Docker.

Each service runs its exact `command` from docker-compose.yml, with its exact `environment` as
Compose builds it from .env.example (`cp .env.example .env`) over the image's ENV from the
Dockerfile, in a process environment that holds nothing else. What only a container provides is
stood in for, and nothing more:

- the `db` service is a fresh database on the session's embedded PostgreSQL (test_files.py checks
  that the URL it replaces names the db service with its user, password and database);
- container paths: /opt/venv is this venv; the volumes and home live in a scratch directory;
- container ports: `--port 8080` and URLs naming a service's port become free local ports.

The image's HEALTHCHECK command itself decides when a service is up.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import free_port
from tracker_service.db.engine import alembic_config

from .deploy_support import Stage, compose, dockerfile_stages, environment, option, read_env_file

pytestmark = pytest.mark.slow

VENV = "/opt/venv"
# URLs that a service's own process dials (inside the compose network), so they are moved to the
# local ports; a URL for clients outside, like TRACKER_PUBLIC_URL, is passed on exactly.
DIALED = {"TASK_TRACKING_URL", "HEALTHCHECK_URL"}


@dataclass
class Rehearsal:
    root: Path  # stands for the container filesystem (volumes, home)
    services: dict[str, dict[str, Any]]
    image: Stage
    database_url: str  # a fresh database standing for the db service's
    host_ports: dict[int, int]  # container port -> local port
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def path(self, container_path: str) -> Path:
        if container_path == VENV or container_path.startswith(VENV + "/"):
            return Path(sys.executable).parent.parent / container_path[len(VENV) :].lstrip("/")
        return self.root / container_path.lstrip("/")

    def url(self, url: str) -> str:
        """A URL naming a service (or loopback) and a container port, as reached from here."""
        parts = urlsplit(url)
        assert parts.hostname in {*self.services, "127.0.0.1", "localhost"}, f"{url}: no service of that name"
        assert parts.port in self.host_ports, f"{url}: no service listens on port {parts.port}"
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.host_ports[parts.port]}"))

    def env(self, service: str, **extra: str) -> dict[str, str]:
        """What the service's process sees: HOME and LANG, the image's ENV, the service's environment."""
        env = {"HOME": self.image.last("WORKDIR") or "/", "LANG": "C.UTF-8", **self.image.env}
        env.update(environment(self.services[service]), **extra)
        for key, value in env.items():
            if key == "PATH":
                env[key] = os.pathsep.join(str(self.path(p)) if p.startswith(VENV) else p for p in value.split(":"))
            elif key == "TRACKER_DATABASE_URL":
                env[key] = self.database_url
            elif value.startswith("/"):
                env[key] = str(self.path(value))
            elif key in DIALED:
                env[key] = self.url(value)
        return env

    def argv(self, service: str, command: list[str] | None = None) -> list[str]:
        """The command with its --port moved to the local port, the program found on the image's PATH."""
        argv = list(command or self.services[service]["command"])
        for i, arg in enumerate(argv[:-1]):
            if arg == "--port":
                argv[i + 1] = str(self.host_ports[int(argv[i + 1])])
        program = shutil.which(argv[0], path=self.env(service)["PATH"])
        assert program and Path(program).parent == self.path(f"{VENV}/bin"), f"{argv[0]} is not in the image's venv"
        return [program, *argv[1:]]

    def cwd(self) -> Path:
        workdir = self.path(self.image.last("WORKDIR") or "/")
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def run(self, service: str, command: list[str] | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        """`docker compose run --rm SERVICE [COMMAND]`."""
        return subprocess.run(
            self.argv(service, command),
            env=self.env(service, **extra),
            cwd=self.cwd(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, service: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                self.argv(service),
                env=self.env(service),
                cwd=self.cwd(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append(proc)
        return proc

    def healthcheck(self, service: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK command, run in the service's environment (or asking `url`)."""
        _, check = self.image.healthcheck
        default = check[2].split("'http://", 1)[1].split("'", 1)[0]
        env = self.env(service)
        env.setdefault("HEALTHCHECK_URL", self.url("http://" + default))
        if url:
            env["HEALTHCHECK_URL"] = url
        program = shutil.which(check[0], path=env["PATH"])
        return subprocess.run(
            [program, *check[1:]], env=env, cwd=self.cwd(), capture_output=True, text=True, timeout=10
        )

    def wait_healthy(self, service: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{service} exited with {proc.returncode}:\n{log.read_text()}")
            if self.healthcheck(service).returncode == 0:
                return
            time.sleep(0.2)
        pytest.fail(f"{service} did not become healthy in {timeout}s:\n{log.read_text()}")

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def rehearsal(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    services = compose(read_env_file())["services"]
    name = f"rehearsal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    ports = {int(option(s["command"], "--port")) for s in services.values() if option(s.get("command") or [], "--port")}
    stage = dockerfile_stages()[-1]
    r = Rehearsal(tmp_path_factory.mktemp("container"), services, stage, database_url, {p: free_port() for p in ports})
    yield r
    r.stop()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def migrated(rehearsal: Rehearsal) -> subprocess.CompletedProcess[str]:
    """`docker compose up` runs the one-shot migrate service first."""
    return rehearsal.run("migrate")


@pytest.fixture(scope="module")
def tracker(rehearsal: Rehearsal, migrated: subprocess.CompletedProcess[str]) -> tuple[str, Path]:
    """The tracker service, started once migrate succeeded, up when the image's HEALTHCHECK passes."""
    assert migrated.returncode == 0, migrated.stderr
    log = rehearsal.root / "tracker.log"
    proc = rehearsal.start("tracker", log)
    rehearsal.wait_healthy("tracker", proc, log)
    return rehearsal.url(f"http://tracker:{option(rehearsal.services['tracker']['command'], '--port')}"), log


@pytest.fixture(scope="module")
def admin_key(rehearsal: Rehearsal, tracker: tuple[str, Path]) -> str:
    key_file = rehearsal.path(environment(rehearsal.services["tracker"])["TRACKER_DATA_DIR"]) / "admin.key"
    return key_file.read_text().strip()


def test_migrate_service_builds_the_schema(rehearsal: Rehearsal, migrated: subprocess.CompletedProcess[str]) -> None:
    from alembic.script import ScriptDirectory

    assert migrated.returncode == 0, migrated.stderr
    heads = set(ScriptDirectory.from_config(alembic_config(rehearsal.database_url)).get_heads())
    with psycopg.connect(rehearsal.database_url) as conn:
        assert {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")} == heads

    again = rehearsal.run("migrate")  # every `docker compose up` runs it again
    assert again.returncode == 0, again.stderr


def test_tracker_service_is_healthy(rehearsal: Rehearsal, tracker: tuple[str, Path]) -> None:
    url, _ = tracker
    health = httpx.get(f"{url}/health", timeout=5)
    assert health.status_code == 200 and health.json()["database"] == "ok", health.text

    # The same HEALTHCHECK fails when nothing answers (a crashed or stopped tracker).
    dead = rehearsal.healthcheck("tracker", url=f"http://127.0.0.1:{free_port()}/health")
    assert dead.returncode == 1, dead


def test_first_start_writes_the_admin_key_to_the_volume(
    rehearsal: Rehearsal, tracker: tuple[str, Path], admin_key: str
) -> None:
    """What the README has people do: `docker compose exec tracker cat /data/admin.key`."""
    url, log = tracker
    key_file = rehearsal.path("/data/admin.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    printed = log.read_text()
    assert "each in a file of mode 0600" in printed and f"{key_file}  role admin" in printed
    public_url = environment(rehearsal.services["tracker"])["TRACKER_PUBLIC_URL"]
    assert f"TASK_TRACKING_URL={public_url} " in printed, "the first-start hint should give the published URL"

    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/tasks", params={"project": "rehearsal"}).status_code == 401
        listed = http.get("/tasks", params={"project": "rehearsal"}, headers={"Authorization": f"Bearer {admin_key}"})
        assert listed.status_code == 200, listed.text


def test_keys_create_with_the_tracker_service_settings(rehearsal: Rehearsal, tracker: tuple[str, Path]) -> None:
    """`docker compose run --rm tracker tracker keys create --name agent --role write`, as the README says."""
    url, _ = tracker
    created = rehearsal.run("tracker", ["tracker", "keys", "create", "--name", "rehearsal-agent", "--role", "write"])
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    allocated = httpx.post(
        f"{url}/ids/next",
        json={"type": "US", "project_id": "rehearsal"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert allocated.status_code == 201 and allocated.json()["next_id"] == "US-001", allocated.text


def _bridge_has_http_mode(rehearsal: Rehearsal) -> bool:
    result = rehearsal.run("mcp", ["tracker-mcp", "--help"])
    return "--transport" in result.stdout + result.stderr


def _call(url: str, key: str | None, tool: str, arguments: dict[str, Any]) -> Any:
    """One MCP session over streamable HTTP, as a client configured with the bridge's URL sends it."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def go() -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with anyio.fail_after(30):
            async with create_mcp_http_client(headers=headers) as http:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert tool in names, sorted(names)
                    return await client.call_tool(tool, arguments)

    return anyio.run(go)


def test_mcp_service_bridges_clients_to_the_tracker(
    rehearsal: Rehearsal, tracker: tuple[str, Path], admin_key: str
) -> None:
    if not _bridge_has_http_mode(rehearsal):
        pytest.skip("tracker-mcp has no HTTP mode yet (`tracker-mcp --help` lists no --transport)")
    log = rehearsal.root / "mcp.log"
    proc = rehearsal.start("mcp", log)
    rehearsal.wait_healthy("mcp", proc, log, timeout=30)

    # TRACKER_MCP_ALLOWED_HOSTS reaches the bridge: the names it lists pass the Host check, others do not.
    port = rehearsal.host_ports[int(option(rehearsal.services["mcp"]["command"], "--port"))]
    allowed = environment(rehearsal.services["mcp"])["TRACKER_MCP_ALLOWED_HOSTS"].split(",")
    auth = {"Authorization": f"Bearer {admin_key}", "Accept": "application/json, text/event-stream"}
    for host, passes in [*((f"{name}:8766", True) for name in allowed), ("rebound.example:8766", False)]:
        answer = httpx.get(f"http://127.0.0.1:{port}/mcp", headers={**auth, "Host": host}, timeout=10)
        assert (answer.status_code != 421) == passes, f"Host {host}: {answer.status_code} {answer.text}"

    # A client on the host reaches the published port as localhost and sends its own key.
    url = f"http://localhost:{port}/mcp"
    arguments = {"artifact_type": "MCP", "project_id": "rehearsal"}
    result = _call(url, admin_key, "get_next_available_id", arguments)
    assert not result.is_error and result.content[0].text == "MCP-001", result

    try:
        refused = _call(url, None, "get_next_available_id", arguments)
    except Exception as exc:  # refused at the HTTP layer, before any tool ran
        refused = exc
    assert isinstance(refused, Exception) or refused.is_error, "the bridge must not act without the client's key"
