"""`tracker`: serve, migrate and manage API keys, on the embedded or a configured PostgreSQL."""

from __future__ import annotations

import argparse
import errno
import io
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker_service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

log = logging.getLogger("tracker")

# Their INFO lines are start-up detail (Alembic's context and each revision it applies, where the
# embedded server lives): shown with -v only. Their warnings and errors always show.
STARTUP_LOGGERS = ("alembic", "tracker.embedded")
# Without it a server that drops packets holds the command for minutes (the kernel's SYN retries).
CONNECT_TIMEOUT_SECONDS = 10
ADMIN_KEY_FILE, AGENT_KEY_FILE = "admin.key", "agent.key"
AGENT_KEY_NAME = "agents"
# tracker_service.domain.transfer.service.FORMATS, spelled here so `tracker --help` imports no SQL.
IMPORT_FORMATS = ("dump", "taskmaster", "beads", "todo")
MIGRATE_HINT = "run `tracker migrate` (or `tracker serve`, which migrates) first"


class CliError(Exception):
    """A failure the user can fix, told in one line on stderr (exit code 1), without a traceback."""


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
    # Never below TRACKER_LOG_LEVEL: at `error`, their warnings stay hidden too.
    startup_level = logging.INFO if args.verbose else max(logging.WARNING, logging.getLogger().level)
    for name in STARTUP_LOGGERS:
        logging.getLogger(name).setLevel(startup_level)
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 0
    except CliError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracker", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="also log start-up detail (migrations, database)")
    # The same flag after the subcommand; SUPPRESS keeps a subcommand from resetting one given before it.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    def add_parser(parent: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
        return parent.add_parser(name, parents=[verbose], **kw)

    serve = add_parser(sub, "serve", help="migrate the database and serve the REST API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, or TRACKER_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080, or TRACKER_PORT)")
    serve.add_argument("--workers", type=int, help="server processes (default 1, or TRACKER_WORKERS)")
    serve.set_defaults(func=cmd_serve)

    migrate = add_parser(sub, "migrate", help="apply database migrations (alembic upgrade head)")
    migrate.set_defaults(func=cmd_migrate)

    worker = add_parser(
        sub,
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

    export = add_parser(sub, "export", help="write tasks, handoffs, IDs, settings and the log as JSON lines")
    export.add_argument("--tenant", help="only this tenant (default: every tenant)")
    export.add_argument("--project", help="only this project")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    imp = add_parser(sub, "import", help="import a dump, a Task Master, Beads or TODO.md file, merging by key")
    imp.add_argument("file", help="the file to read, - for standard input")
    imp.add_argument(
        "--from", dest="format", choices=IMPORT_FORMATS, default="dump", help="the file's format (default dump)"
    )
    imp.add_argument("--tenant", help="tenant to import into (default: a dump's own; 'default' for other files)")
    imp.add_argument("--project", help="project for the tasks of a taskmaster, beads or todo file")
    imp.add_argument("--dry-run", action="store_true", help="report what would change and write nothing")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(func=cmd_import)

    restore = add_parser(sub, "restore", help="rebuild tenants from a backup location into an empty database")
    restore.add_argument("--from", dest="url", required=True, help="file:///path, s3://bucket/prefix or gs://...")
    restore.add_argument("--tenant", help="the tenant to restore (default: every tenant in the backup)")
    restore.add_argument(
        "--endpoint-url", help="an S3-compatible store's endpoint (default TRACKER_BACKUP_ENDPOINT_URL)"
    )
    restore.set_defaults(func=cmd_restore)

    keys = add_parser(sub, "keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = add_parser(keys, "create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", default="default")
    create.add_argument("--role", choices=("read", "write", "admin"), default="write")
    create.set_defaults(func=cmd_keys_create)
    lst = add_parser(keys, "list", help="list keys (never the keys themselves)")
    lst.set_defaults(func=cmd_keys_list)
    revoke = add_parser(keys, "revoke", help="revoke a key by id, prefix or name")
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


@contextmanager
def _database(url: str, settings: Settings, *, migrate: bool) -> Iterator[Engine]:
    """An engine on a database whose schema is at the code's head, for one command.

    With `migrate` the schema is brought there; without it nothing is changed and a schema that
    is missing or behind is a CliError. A server that cannot be reached is a CliError too.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from tracker_service.db import engine as db

    url = _with_connect_timeout(url)
    try:
        if migrate:
            db.migrate(url)
        engine = create_engine(db.normalize_url(url))
        try:
            if not migrate:
                with engine.connect() as conn:
                    _require_current_schema(conn)
            yield engine
        finally:
            engine.dispose()
    except OperationalError as exc:
        if exc.statement is not None:
            raise  # a statement failed on a working connection: not a matter of reaching the server
        if settings.database_url:
            fix = "check TRACKER_DATABASE_URL"
        else:
            fix = f"the embedded server in {settings.resolved_data_dir / 'pg'} did not answer"
        raise CliError(_cannot_connect(url, exc.orig, fix)) from None


def _with_connect_timeout(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)}).render_as_string(
        hide_password=False
    )


def _cannot_connect(url: str, error: BaseException | None, fix: str) -> str:
    """One line: which server, why (in words, never the password), what to check."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    port = parsed.port or 5432
    if parsed.host:
        where = f"[{parsed.host}]:{port}" if ":" in parsed.host else f"{parsed.host}:{port}"
    else:
        socket_dir = parsed.query.get("host") or "the default directory"
        where = f"the unix socket in {socket_dir}"
    first_line = (str(error) if error is not None else "unknown error").strip().splitlines()[0]
    # psycopg says "connection failed: connection to server at "h", port p failed: CAUSE".
    cause = first_line.rsplit("failed: ", 1)[-1].strip()
    reached = cause.startswith("FATAL:")  # the server answered, and refused
    if "failed to resolve host" in first_line:
        cause = "host name does not resolve"
    elif "timeout expired" in first_line:
        cause = f"no answer within {CONNECT_TIMEOUT_SECONDS} s"
    else:
        cause = cause.removeprefix("FATAL:").strip()
        cause = cause[:1].lower() + cause[1:]
    if parsed.password:
        cause = cause.replace(parsed.password, "***")
    what = f"cannot connect to PostgreSQL at {where}" if reached else f"cannot reach PostgreSQL at {where}"
    return f"{what} ({cause}); {fix}"


def _require_current_schema(conn: Connection) -> None:
    from tracker_service.db.engine import schema_revisions

    revisions = schema_revisions(conn)
    if revisions.up_to_date:
        return
    at, head = ", ".join(sorted(revisions.current)), ", ".join(sorted(revisions.heads))
    if not revisions.current:
        raise CliError(f"the database has no tracker schema yet; {MIGRATE_HINT}")
    if revisions.newer_than_code:
        raise CliError(
            f"the database is at revision {at}, newer than this tracker knows (its latest is {head}); "
            "run a newer tracker"
        )
    raise CliError(f"the database is at revision {at}, behind this tracker's {head}; {MIGRATE_HINT}")


def _ensure_port_free(host: str, port: int, workers: int) -> None:
    """Fail in one line when the address is taken, before the database is started or migrated.

    Binds the way uvicorn will (SO_REUSEADDR, as asyncio and uvicorn set it, so a port left in
    TIME_WAIT by a stopped tracker counts as free), then lets go at once.
    """
    # One worker: asyncio's create_server binds every address the host resolves to; several
    # workers: uvicorn binds one socket, IPv6 when the host has a colon.
    family = socket.AF_UNSPEC if workers == 1 else (socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        addresses = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host!r} ({exc.strerror}); check --host or TRACKER_HOST") from None
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    for af, kind, proto, _, address in addresses:
        with socket.socket(af, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if af == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio does
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CliError(
                        f"{where} is already in use: a tracker (or something else) may already run there; "
                        "pick another port with --port N or TRACKER_PORT"
                    ) from None
                raise CliError(
                    f"cannot listen on {where} ({exc.strerror}); pick another address with --host/--port "
                    "or TRACKER_HOST/TRACKER_PORT"
                ) from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from tracker_service.app import create_app, served

    if settings.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {settings.workers}")
    _ensure_port_free(settings.host, settings.port, settings.workers)
    # SIGTERM becomes a normal exit, so atexit stops the embedded PostgreSQL cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    url = database_url(settings)
    data_dir = settings.resolved_data_dir
    with _database(url, settings, migrate=True) as engine, engine.begin() as conn:
        first_start = _bootstrap_keys(conn, data_dir)
    if first_start:
        _print_first_start(settings, data_dir)
    elif key_files := [str(data_dir / f) for f in (ADMIN_KEY_FILE, AGENT_KEY_FILE) if (data_dir / f).exists()]:
        print(f"tracker: API keys made on the first start: {', '.join(key_files)}", file=sys.stderr)
    target: object
    extra: dict[str, object] = {}
    if settings.workers == 1:
        target = served(create_app(settings.with_(database_url=url)))
    else:
        # Worker processes are spawned fresh and build their app from the environment.
        os.environ.update(TRACKER_DATABASE_URL=url, TRACKER_HOST=settings.host, TRACKER_PORT=str(settings.port))
        target, extra = "tracker_service.app:create_app_from_env", {"factory": True, "workers": settings.workers}
    uvicorn.run(
        target,
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


def _bootstrap_keys(conn: Connection, data_dir: Path) -> bool:
    """On the very first start: an admin key for people and a write key for agents, each in a 0600 file.

    Both are made in bootstrap_admin_key's transaction, under its advisory lock, so trackers
    starting together make one pair. The files are written before that transaction commits: a
    key is never stored without its file (a failed commit leaves files whose keys do not exist,
    replaced on the next start, which bootstraps again).
    """
    from tracker_service.domain.keys.service import bootstrap_admin_key, create_key

    admin_key = bootstrap_admin_key(conn)
    if admin_key is None:
        return False
    agent_key, _ = create_key(conn, name=AGENT_KEY_NAME, tenant="default", role="write")
    _write_secret(data_dir / ADMIN_KEY_FILE, admin_key)
    _write_secret(data_dir / AGENT_KEY_FILE, agent_key)
    return True


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(secret + "\n")


def _print_first_start(settings: Settings, data_dir: Path) -> None:
    admin_file, agent_file = data_dir / ADMIN_KEY_FILE, data_dir / AGENT_KEY_FILE
    print(
        "Created the first API keys (tenant default), each in a file of mode 0600:\n"
        f"  {admin_file}  role admin, for people: administration (e.g. setting ID counters)\n"
        f"  {agent_file}  role write, named {AGENT_KEY_NAME}: for agents\n"
        "Register the MCP bridge with Claude Code (with the agents' write key):\n"
        f"  claude mcp add tracker -e TASK_TRACKING_URL={settings.base_url} "
        f'-e TASK_TRACKING_API_KEY="$(cat {agent_file})" -- tracker-mcp\n'
        "Try the API:\n"
        f'  curl -H "Authorization: Bearer $(cat {agent_file})" {settings.base_url}/tasks\n'
        f"Open the board and sign in with the admin key: {settings.base_url}/board",
        flush=True,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
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
    with _database(database_url(settings), settings, migrate=True):
        pass
    print("database is at the latest revision", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.transfer.export import export_lines

    url = database_url(settings)
    with _database(url, settings, migrate=False) as engine, _output(args.output) as out:
        # One snapshot: rows written while the export runs are in it entirely or not at all.
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            count = export_lines(conn, out, tenant=args.tenant, project=args.project)
    print(f"exported {count} records", file=sys.stderr)
    return 0


@contextmanager
def _output(path: str | None) -> Iterator[Any]:
    # UTF-8 and \n whatever the locale: a dump is the same bytes everywhere.
    if path is None:
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", write_through=False)
        try:
            yield out
        finally:
            out.flush()
            out.detach()
        return
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        yield out


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.transfer.service import import_into, read_rows
    from tracker_service.errors import TrackerError

    tenant = args.tenant or (None if args.format == "dump" else "default")
    source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    with source:
        content = source.read().decode("utf-8")
    try:
        rows = read_rows(args.format, tenant=tenant, project=args.project, content=content)
        with _database(database_url(settings), settings, migrate=False) as engine, engine.begin() as conn:
            report = import_into(conn, rows, tenant=tenant, dry_run=args.dry_run).as_dict()
    except TrackerError as exc:
        raise CliError(f"{args.file}: {exc.detail}; nothing was imported") from None
    print(json.dumps(report, indent=2) if args.json else _readable(report))
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.backup.restore import backed_up_tenants, restore_tenant
    from tracker_service.backup.store import BackupStore
    from tracker_service.errors import TrackerError

    try:
        store = BackupStore(args.url, args.endpoint_url or settings.backup_endpoint_url)
        tenants = [args.tenant] if args.tenant else backed_up_tenants(store)
        if not tenants:
            raise CliError(f"the backup at {args.url} holds no tenant")
        with _database(database_url(settings), settings, migrate=True) as engine, engine.begin() as conn:
            reports = {tenant: restore_tenant(conn, store, tenant).as_dict() for tenant in tenants}
    except TrackerError as exc:
        raise CliError(f"restore from {args.url}: {exc.detail}; nothing was restored") from None
    for tenant, report in reports.items():
        print(f"tenant {tenant}: {_readable(report)}")
    return 0


def _readable(report: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in report["created"].items()) or "nothing"
    lines = [f"{'would create' if report['dry_run'] else 'created'}: {counts}"]
    if report["updated"]:
        lines.append("counters moved: " + ", ".join(f"{n} {k}" for k, n in report["updated"].items()))
    if report["unchanged"]:
        lines.append("already there: " + ", ".join(f"{n} {k}" for k, n in report["unchanged"].items()))
    lines += [f"conflict (line {c['line']}, {c['kind']} {c['name']}): {c['detail']}" for c in report["conflicts"]]
    return "\n".join(lines)


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.keys.service import create_key

    with _database(database_url(settings), settings, migrate=False) as engine, engine.begin() as conn:
        key, row = create_key(conn, name=args.name, tenant=args.tenant, role=args.role)
    print(
        f"created key {row['prefix']}… (id {row['id']}, tenant {row['tenant']}, role {row['role']}); "
        "it is shown only this once:",
        file=sys.stderr,
    )
    print(key)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.keys.service import list_keys

    with _database(database_url(settings), settings, migrate=False) as engine, engine.connect() as conn:
        rows = list_keys(conn)
    print(f"{'id':36}  {'tenant':16}  {'name':20}  {'role':5}  {'prefix':11}  status")
    for r in rows:
        status = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
        print(f"{r['id']!s:36}  {r['tenant']:16}  {r['name']:20}  {r['role']:5}  {r['prefix']:11}  {status}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from tracker_service.domain.keys.service import revoke_key

    with _database(database_url(settings), settings, migrate=False) as engine, engine.begin() as conn:
        rows = revoke_key(conn, args.ref, tenant=args.tenant)
    if not rows:
        print(f"tracker: no active key matches {args.ref!r}", file=sys.stderr)
        return 1
    for r in rows:
        print(f"revoked {r['id']} ({r['tenant']}/{r['name']})", file=sys.stderr)
    return 0
