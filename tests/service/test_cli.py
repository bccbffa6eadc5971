"""The `tracker` command: serve on the embedded default, keys beside a running server, clean stop."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import client_for, free_port, start_tracker
from tests.helpers import ok, problem
from tracker_service.db.engine import MIGRATIONS, migrate, normalize_url

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def tracker(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tracker_service", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def postgres_running(data_dir: Path) -> bool:
    return any(
        p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["name", "cmdline"])
    )


@pytest.mark.slow
def test_serve_on_embedded_default_then_keys_beside_it_then_clean_stop(tmp_path_factory, monkeypatch):
    data = Path(f"/tmp/trk-cli-{uuid.uuid4().hex[:6]}")  # short: the unix socket lives here
    env = {"TRACKER_DATA_DIR": str(data)}
    monkeypatch.delenv("TRACKER_DATABASE_URL", raising=False)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    port = free_port()
    server = start_tracker(env, log, port=port)
    try:
        out = log.read_text()
        key_file, agent_key_file = data / "admin.key", data / "agent.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(agent_key_file.stat().st_mode) == 0o600
        # Agents are registered with the write key; the admin key's place is printed for people.
        assert (
            f"claude mcp add tracker -e TASK_TRACKING_URL=http://127.0.0.1:{port} "
            f'-e TASK_TRACKING_API_KEY="$(cat {agent_key_file})" -- tracker-mcp'
        ) in out
        assert f"{key_file}  role admin" in out and f"{agent_key_file}  role write" in out
        admin_key, agent_key = key_file.read_text().strip(), agent_key_file.read_text().strip()
        assert admin_key not in out and agent_key not in out  # the keys themselves are only in the 0600 files
        with client_for(server.url, admin_key) as admin:
            ok(admin.post("/tasks", json={"project": "cli", "title": "survives restarts"}), 201)
            ok(admin.put("/ids/cli/US", json={"last_value": 27}))
        with client_for(server.url, agent_key) as agent:  # write, same tenant, not admin
            assert ok(agent.get("/tasks", params={"project": "cli"}))["total"] == 1
            problem(agent.put("/ids/cli/US", json={"last_value": 30}), 403, "FORBIDDEN")

        # keys commands attach to the same embedded server while it runs
        created = tracker("keys", "create", "--name", "bot", "--role", "read", "--tenant", "default", env=env)
        assert created.returncode == 0, created.stderr
        bot_key = created.stdout.strip()
        assert re.fullmatch(r"trk_[\w-]{40,}", bot_key) and "shown only this once" in created.stderr
        with client_for(server.url, bot_key) as bot:
            assert ok(bot.get("/tasks"))["total"] == 1
            problem(bot.post("/tasks", json={"project": "cli", "title": "no"}), 403, "FORBIDDEN")
        listed = tracker("keys", "list", env=env)
        assert listed.returncode == 0 and "bot" in listed.stdout and "admin" in listed.stdout
        assert re.search(r"default +agents +write", listed.stdout), listed.stdout
        assert bot_key not in listed.stdout
        dup = tracker("keys", "create", "--name", "bot", env=env)
        assert dup.returncode == 2 and "already has an active key" in dup.stderr
        assert tracker("keys", "revoke", "bot", env=env).returncode == 0
        # The server hears of the revocation by NOTIFY (milliseconds); bounded, then refused for good.
        assert wait_until(lambda: httpx.get(server.url + "/tasks", headers={"X-API-Key": bot_key}).status_code == 401)
        problem(httpx.get(server.url + "/tasks", headers={"X-API-Key": bot_key}), 401, "UNAUTHORIZED")
        assert tracker("keys", "revoke", "bot", env=env).returncode == 1
        assert postgres_running(data)  # the CLI processes left the server running
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert not postgres_running(data), "SIGTERM must stop the embedded PostgreSQL too"

    again = start_tracker(env, log, port=free_port())
    try:
        assert log.read_text().count("Created the first API key") == 1
        assert agent_key_file.read_text().strip() == agent_key  # not made again
        with client_for(again.url, admin_key) as admin:
            assert ok(admin.get("/tasks", params={"project": "cli"}))["tasks"][0]["title"] == "survives restarts"
            assert ok(admin.get("/ids/next", params={"type": "US", "project": "cli"}))["next_id"] == "US-028"
    finally:
        again.stop()
    assert not postgres_running(data)


def wait_until(predicate, seconds: float = 5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_serve_with_two_worker_processes(pg_url, make_key, tmp_path):
    server = start_tracker({"TRACKER_DATABASE_URL": pg_url, "TRACKER_WORKERS": "2"}, tmp_path / "t.log")
    try:
        children = psutil.Process(server.proc.pid).children()
        workers = [p for p in children if "spawn_main" in " ".join(p.cmdline())]  # not multiprocessing's tracker
        assert len(workers) == 2, "uvicorn should run two worker processes"
        project = f"workers-{uuid.uuid4().hex[:6]}"
        key = make_key("write")

        def allocate(_: int) -> int:
            with client_for(server.url, key) as c:
                return ok(c.post("/ids/next", json={"type": "W", "project_id": project}), 201)["number"]

        with ThreadPoolExecutor(16) as pool:
            numbers = list(pool.map(allocate, range(64)))
        assert sorted(numbers) == list(range(1, 65))
        busy = [p.cpu_times().user + p.cpu_times().system for p in workers]
        assert all(t > 0 for t in busy), f"both workers should have served requests: {busy}"
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)


def test_migrate_and_dotenv(pg_url, tmp_path):
    # .env is read, but a real environment variable wins over it.
    (tmp_path / ".env").write_text(f"TRACKER_DATABASE_URL={pg_url}\nTRACKER_LOG_LEVEL=warning\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}

    def migrate() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tracker_service", "migrate"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = migrate()
    assert result.returncode == 0, result.stderr
    env["TRACKER_DATABASE_URL"] = "mysql://nowhere/x"
    result = migrate()
    assert result.returncode == 2 and "must be a PostgreSQL URL" in result.stderr


def test_bad_settings_are_clear_errors(tmp_path):
    result = tracker("migrate", env={"TRACKER_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 2 and "TRACKER_PORT must be an integer" in result.stderr
    result = tracker("keys", "create", env={}, cwd=tmp_path)
    assert result.returncode == 2 and "--name" in result.stderr


UNREACHABLE = {
    "refused": ("postgresql://u:s3cret-pw@127.0.0.1:1/x", "127.0.0.1:1", "connection refused"),
    "unresolvable": ("postgresql://u:s3cret-pw@no-such-host.invalid:5433/x", "no-such-host.invalid:5433", "resolve"),
}
CONNECTING_COMMANDS = {
    "serve": ("serve",),
    "migrate": ("migrate",),
    "keys-create": ("keys", "create", "--name", "bot"),
    "keys-list": ("keys", "list"),
    "keys-revoke": ("keys", "revoke", "bot"),
}


@pytest.mark.parametrize("server", UNREACHABLE)
@pytest.mark.parametrize("command", CONNECTING_COMMANDS)
def test_unreachable_database_is_one_line_naming_the_server(command, server, tmp_path):
    url, where, cause = UNREACHABLE[server]
    env = {"TRACKER_DATABASE_URL": url, "TRACKER_PORT": str(free_port()), "TRACKER_DATA_DIR": str(tmp_path)}
    result = tracker(*CONNECTING_COMMANDS[command], env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tracker: cannot reach PostgreSQL at {where} (") and cause in lines[0].lower(), lines
    assert "TRACKER_DATABASE_URL" in lines[0] and "s3cret-pw" not in result.stderr + result.stdout


def test_serve_on_a_port_in_use_says_so_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKER_DATABASE_URL", raising=False)  # the embedded default
    data = Path(f"/tmp/trk-port-{uuid.uuid4().hex[:6]}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            result = tracker("serve", "--port", str(port), env={"TRACKER_DATA_DIR": str(data)}, cwd=tmp_path)
            started_postgres = (data / "pg").exists()
        finally:
            shutil.rmtree(data, ignore_errors=True)  # only there when the check came too late
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "already" in lines[0], lines
    assert "--port" in lines[0] and "TRACKER_PORT" in lines[0], lines
    # Checked before the embedded PostgreSQL is started (or even created) and before migrating.
    assert not started_postgres


@pytest.fixture
def empty_database(pg_url: str) -> Iterator[str]:
    """A database without any tracker schema on the session's server; the URL to it."""
    name = f"schema_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def alembic_revisions(url: str) -> list[str]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar():
                return []
            return list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", ["keys-create", "keys-list", "keys-revoke"])
def test_keys_commands_never_migrate(command, empty_database, tmp_path):
    env = {"TRACKER_DATABASE_URL": empty_database}
    result = tracker(*CONNECTING_COMMANDS[command], env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "tracker migrate" in result.stderr, result.stderr
    assert "no tracker schema" in result.stderr
    assert alembic_revisions(empty_database) == []

    migrate(empty_database, "0005")  # a database left behind by an older tracker
    result = tracker(*CONNECTING_COMMANDS[command], env=env, cwd=tmp_path)
    assert result.returncode == 1 and "tracker migrate" in result.stderr, result.stderr
    assert f"revision 0005, behind this tracker's {HEAD}" in result.stderr
    assert alembic_revisions(empty_database) == ["0005"]

    migrated = tracker("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert alembic_revisions(empty_database) == [HEAD]
    assert tracker("keys", "list", env=env, cwd=tmp_path).returncode == 0


def test_cli_is_quiet_unless_verbose(pg_url, tmp_path):
    env = {"TRACKER_DATABASE_URL": pg_url, "TRACKER_LOG_LEVEL": "info"}
    quiet = tracker("keys", "list", env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    migrated = tracker("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0 and migrated.stderr == "database is at the latest revision\n", migrated.stderr
    for args in (("-v", "keys", "list"), ("keys", "list", "-v"), ("--verbose", "migrate")):
        loud = tracker(*args, env=env, cwd=tmp_path)
        assert loud.returncode == 0, loud.stderr
        assert "INFO alembic.runtime.migration: Context impl PostgresqlImpl." in loud.stderr, args


def test_keys_commands_refuse_a_schema_newer_than_the_code(empty_database, tmp_path):
    migrate(empty_database)
    engine = create_engine(normalize_url(empty_database))
    with engine.begin() as conn:  # as a later tracker's migration would leave it
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    result = tracker("keys", "list", env={"TRACKER_DATABASE_URL": empty_database}, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"tracker: the database is at revision 0099, newer than this tracker knows (its latest is {HEAD}); "
        "run a newer tracker\n"
    )
