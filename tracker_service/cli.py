"""`tracker`: serve, migrate and manage API keys, on the embedded or a configured PostgreSQL."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from tracker_service.settings import Settings

log = logging.getLogger("tracker")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _load_dotenv()
    try:
        settings = Settings.from_env(
            host=getattr(args, "host", None), port=getattr(args, "port", None), workers=getattr(args, "workers", None)
        )
    except SystemExit as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2
    from tracker_service import logs

    try:
        logs.configure(settings.log_level, settings.log_format)
    except ValueError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 0
    except ValueError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracker", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database and serve the REST API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, or TRACKER_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080, or TRACKER_PORT)")
    serve.add_argument("--workers", type=int, help="server processes (default 1, or TRACKER_WORKERS)")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    migrate.set_defaults(func=cmd_migrate)

    worker = sub.add_parser(
        "worker",
        help="run COMMAND for each delegated task of a type (reads TASK_TRACKING_URL, TASK_TRACKING_API_KEY)",
        usage="tracker worker --type TYPE [--project P] [--name NAME] -- COMMAND [ARGS...]",
    )
    worker.add_argument("--type", required=True, help="task type to claim, e.g. code or general")
    worker.add_argument("--project", help="project to take work from (default: TRACKER_DELEGATION_PROJECT)")
    worker.add_argument("--name", help="agent name the tasks are assigned to (default: worker-HOST-PID)")
    worker.add_argument("--lease", type=int, default=60, help="lease in seconds, renewed while COMMAND runs")
    worker.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    worker.set_defaults(func=cmd_worker)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", default="default")
    create.add_argument("--role", choices=("read", "write", "admin"), default="write")
    create.set_defaults(func=cmd_keys_create)
    lst = keys.add_parser("list", help="list keys (never the keys themselves)")
    lst.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id, prefix or name")
    revoke.add_argument("ref")
    revoke.add_argument("--tenant")
    revoke.set_defaults(func=cmd_keys_revoke)
    return p


def _load_dotenv() -> None:
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started or attached to)."""
    if settings.database_url:
        return settings.database_url
    from tracker_service import embedded

    return embedded.start(settings.resolved_data_dir)


def _sync_engine(url: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    from tracker_service.db.engine import normalize_url

    return create_engine(normalize_url(url))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from tracker_service.app import create_app
    from tracker_service.db.engine import migrate
    from tracker_service.domain.keys.service import bootstrap_admin_key

    if settings.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {settings.workers}")
    # SIGTERM becomes a normal exit, so atexit stops the embedded PostgreSQL cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    url = database_url(settings)
    migrate(url)
    engine = _sync_engine(url)
    with engine.begin() as conn:
        key = bootstrap_admin_key(conn)
    engine.dispose()
    key_file = settings.resolved_data_dir / "admin.key"
    if key is not None:
        _write_secret(key_file, key)
        _print_first_start(settings, key_file)
    elif key_file.exists():
        print(f"tracker: admin key file: {key_file}", file=sys.stderr)
    target: object
    extra: dict[str, object] = {}
    if settings.workers == 1:
        target = create_app(settings.with_(database_url=url))
    else:
        # Worker processes are spawned fresh and build their app from the environment.
        os.environ.update(TRACKER_DATABASE_URL=url, TRACKER_HOST=settings.host, TRACKER_PORT=str(settings.port))
        target, extra = "tracker_service.app:create_app_from_env", {"factory": True, "workers": settings.workers}
    uvicorn.run(
        target,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        server_header=False,
        log_config=None,  # keep the logging set up by logs.configure (text or JSON)
        access_log=False,  # RequestLog writes one line per request, with its request id
        # Open event streams would otherwise hold a shutdown forever.
        timeout_graceful_shutdown=5,
    )
    return 0


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(secret + "\n")


def _print_first_start(settings: Settings, key_file: Path) -> None:
    print(
        f"Created the first API key (role admin, tenant default) in {key_file} (mode 0600).\n"
        "Register the MCP bridge with Claude Code:\n"
        f"  claude mcp add tracker -e TASK_TRACKING_URL={settings.base_url} "
        f'-e TASK_TRACKING_API_KEY="$(cat {key_file})" -- tracker-mcp\n'
        f"Try the API:\n"
        f'  curl -H "Authorization: Bearer $(cat {key_file})" {settings.base_url}/tasks',
        flush=True,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import socket

    from tracker_service.worker import Worker

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print(
            "tracker worker: give the command to run after --, e.g. tracker worker --type code -- cat", file=sys.stderr
        )
        return 2
    key = os.environ.get("TASK_TRACKING_API_KEY")
    if not key:
        print("tracker worker: TASK_TRACKING_API_KEY environment variable not set", file=sys.stderr)
        return 2
    worker = Worker(
        base_url=os.environ.get("TASK_TRACKING_URL", "http://localhost:8080"),
        api_key=key,
        task_type=args.type,
        project=args.project or settings.delegation_project,
        name=args.name or f"worker-{socket.gethostname()}-{os.getpid()}",
        command=command,
        lease_seconds=max(10, args.lease),
    )
    return worker.run()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.db.engine import migrate

    migrate(database_url(settings))
    print("database is at the latest revision", file=sys.stderr)
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.keys.service import create_key

    engine = _migrated_engine(settings)
    with engine.begin() as conn:
        key, row = create_key(conn, name=args.name, tenant=args.tenant, role=args.role)
    engine.dispose()
    print(
        f"created key {row['prefix']}… (id {row['id']}, tenant {row['tenant']}, role {row['role']}); "
        "it is shown only this once:",
        file=sys.stderr,
    )
    print(key)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.keys.service import list_keys

    engine = _migrated_engine(settings)
    with engine.connect() as conn:
        rows = list_keys(conn)
    engine.dispose()
    print(f"{'id':36}  {'tenant':16}  {'name':20}  {'role':5}  {'prefix':11}  status")
    for r in rows:
        status = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
        print(f"{r['id']!s:36}  {r['tenant']:16}  {r['name']:20}  {r['role']:5}  {r['prefix']:11}  {status}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.keys.service import revoke_key

    engine = _migrated_engine(settings)
    with engine.begin() as conn:
        rows = revoke_key(conn, args.ref, tenant=args.tenant)
    engine.dispose()
    if not rows:
        print(f"tracker: no active key matches {args.ref!r}", file=sys.stderr)
        return 1
    for r in rows:
        print(f"revoked {r['id']} ({r['tenant']}/{r['name']})", file=sys.stderr)
    return 0


def _migrated_engine(settings: Settings):  # type: ignore[no-untyped-def]
    from tracker_service.db.engine import migrate

    url = database_url(settings)
    migrate(url)
    return _sync_engine(url)
