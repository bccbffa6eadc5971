"""Connecting to PostgreSQL and migrating it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn

MIGRATIONS = Path(__file__).parent / "migrations"

# A transaction left open holds back SKIP LOCKED claims for everyone (NOTES.md); cap it.
SESSION_OPTIONS = "-c idle_in_transaction_session_timeout=30000 -c statement_timeout=30000"


def normalize_url(url: str) -> str:
    """Accept postgres://, postgresql:// and postgresql+psycopg:// and use psycopg 3."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"TRACKER_DATABASE_URL must be a PostgreSQL URL, got {parsed.drivername!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        normalize_url(url),
        # A fixed pool: connections opened stay open. With overflow, SQLAlchemy closes a returned
        # connection whenever pool_size are idle and opens one whenever none is, so under load
        # the tracker opened and closed a PostgreSQL backend every few requests (85 in 4 s of
        # claims at 32 clients, bench.throughput); a request now waits for a pooled one instead.
        pool_size=pool_size,
        max_overflow=0,
        # No ping per checkout (a round trip on every request): a connection found dead fails its
        # request with 503 and makes the pool drop every connection older than it.
        pool_pre_ping=False,
        connect_args={"options": SESSION_OPTIONS},
    )


class RequestConnection(AsyncConnection):
    """A request's pooled connection: its psycopg connection for prepared statements (db.hot), and
    the SQLAlchemy Connection around it, built only when a statement needs SQLAlchemy. A claim or an
    ID allocation never does; building and closing one cost 0.06-0.12 ms of the server's CPU per
    request (bench.ab)."""

    def __init__(self, engine: AsyncEngine, fairy: PoolProxiedConnection) -> None:
        # Not AsyncConnection.__init__: its sync_connection is the property below.
        self.engine = engine
        self.sync_engine = engine.sync_engine
        self.fairy = fairy
        self.driver: psycopg.AsyncConnection = fairy.driver_connection  # type: ignore[assignment]
        self._wrapped: Connection | None = None

    @property
    def sync_connection(self) -> Connection:  # type: ignore[override]
        if self._wrapped is None:
            self._wrapped = self._assign_proxied(Connection(self.sync_engine, connection=self.fairy))
        return self._wrapped

    @property
    def invalidated(self) -> bool:
        return not self.fairy.is_valid if self._wrapped is None else self._wrapped.invalidated

    async def close(self) -> None:
        if self._wrapped is None:
            await greenlet_spawn(self.fairy.close)  # back to the pool, rolled back if need be
        else:
            await super().close()


@asynccontextmanager
async def request_connection(engine: AsyncEngine, autocommit: bool) -> AsyncIterator[RequestConnection]:
    """One pooled connection for one request, in autocommit or not.

    `engine.connect()` with `execution_options(isolation_level=...)` cost 0.18 ms of CPU per request
    (a greenlet hop each for the checkout, the isolation level, the raw connection and the close,
    plus the level's reset): as much as the ID allocation's statement itself. Here the connection is
    taken from the same pool as it is, and autocommit is set on the psycopg connection directly
    (BENCHMARKS.md, issue 17, fourth round).
    """
    try:
        fairy = await engine.raw_connection()
    except psycopg.Error as exc:  # like engine.connect(): the error tree knows SQLAlchemy's errors
        raise DBAPIError.instance(None, None, exc, psycopg.Error, dialect=engine.dialect) from exc
    conn = RequestConnection(engine, fairy)
    try:
        if autocommit:
            await conn.driver.set_autocommit(True)
        yield conn
    finally:
        if autocommit and not conn.invalidated:
            try:
                await conn.driver.set_autocommit(False)  # never back to the pool in autocommit
            except psycopg.Error as exc:
                await conn.invalidate(exc)
        await conn.close()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = normalize_url(url)
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic revisions up to `revision` (the schema is never built by create_all)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class SchemaRevisions:
    """Where a database's schema stands against the Alembic revisions shipped with this code."""

    current: frozenset[str]  # the database's heads (empty: no tracker schema at all)
    heads: frozenset[str]  # the code's heads
    known: frozenset[str]  # every revision the code ships

    @property
    def up_to_date(self) -> bool:
        return self.current == self.heads

    @property
    def newer_than_code(self) -> bool:
        """The database was migrated by a newer tracker: revisions this code does not know."""
        return not self.current <= self.known


def schema_revisions(conn: Connection) -> SchemaRevisions:
    """Read the database's Alembic revisions without changing anything (no upgrade, no lock)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return SchemaRevisions(
        current=frozenset(MigrationContext.configure(conn).get_current_heads()),
        heads=frozenset(script.get_heads()),
        known=frozenset(rev.revision for rev in script.walk_revisions()),
    )
