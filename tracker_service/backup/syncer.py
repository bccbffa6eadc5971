"""The backup syncer: follows the events table as an outbox and copies each committed change to
the store, with a durable cursor in PostgreSQL (table backup_cursor).

- Order: events are read in (txid, id) order, and only those whose transaction is below the oldest
  one still running (as the live stream does, domain.events.stream): an event committed late
  with a lower id is never skipped.
- Durability: the cursor moves only after the store has a pass's objects; a crash repeats the
  pass, which rewrites whole objects from current rows (idempotent). Writes never wait on it.
- One cursor per backup target (named by its URL): a new target starts with the whole log.
- One syncer per target at a time: each tracker process tries pg_try_advisory_lock on a connection of its own;
  the holder syncs, the others retry every TAKEOVER_SECONDS and take over when its connection ends
  (the database drops a dead process's session, and its lock with it). All the syncer's SQL runs on
  that connection, so a syncer that lost it stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tracker_service.backup import plan
from tracker_service.backup.store import BackupStore
from tracker_service.db.engine import SESSION_OPTIONS, normalize_url
from tracker_service.domain.events.stream import BLOCKED_RECHECK_SECONDS  # as the live stream
from tracker_service.errors import BackupUnavailable
from tracker_service.metrics import BACKUP_DELAY, BACKUP_FAILURES, BACKUP_LAG, BACKUP_OBJECTS
from tracker_service.notify import ALL_TENANTS, EventHub

log = logging.getLogger("tracker.backup")

# pg_try_advisory_lock(class, hashtext(target)): the class is a constant no other lock uses ("tbak").
LOCK_CLASS = 0x7462616B
BATCH = 500
IDLE_POLL_SECONDS = 1.0  # a NOTIFY from a writer in any process wakes it sooner
TAKEOVER_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 30.0

_LOCK = text("SELECT pg_try_advisory_lock(CAST(:c AS int), hashtext(:name))")
_INIT = text("INSERT INTO backup_cursor (name) VALUES (:name) ON CONFLICT (name) DO NOTHING")
_READ = text(
    """
    SELECT e.id, e.txid::text AS txid, e.tenant, e.project, e.type, e.entity_id, e.actor, e.summary, e.data,
           e.created_at, e.txid < pg_snapshot_xmin(pg_current_snapshot()) AS final
    FROM events e, backup_cursor c
    WHERE c.name = :name AND (e.txid, e.id) > (c.txid, c.event_id)
    ORDER BY e.txid, e.id
    LIMIT :limit
    """
)
_ADVANCE = text(
    """
    UPDATE backup_cursor SET txid = CAST(:txid AS xid8), event_id = :id, synced_at = now(), updated_at = now(),
           last_error = NULL, last_error_at = NULL
    WHERE name = :name
    """
)
_FAILED = text(
    """
    UPDATE backup_cursor SET failures = failures + 1, last_error = :error, last_error_at = now(), updated_at = now()
    WHERE name = :name
    """
)
_STATUS = text(
    """
    SELECT c.synced_at, c.failures, c.last_error, c.last_error_at,
           (SELECT extract(epoch FROM now() - e.created_at) FROM events e
            WHERE (e.txid, e.id) > (c.txid, c.event_id) ORDER BY e.txid, e.id LIMIT 1) AS lag
    FROM backup_cursor c WHERE c.name = :name
    """
)


@dataclass(frozen=True)
class BackupStatus:
    state: str  # ok | lagging | failing
    lag_seconds: float
    failures: int
    last_error: str | None


async def backup_status(conn: AsyncConnection, name: str, lag_threshold: float) -> BackupStatus:
    """Read from the database, so any tracker process can tell, whichever one syncs."""
    row = (await conn.execute(_STATUS, {"name": name})).first()
    if row is None:  # no syncer has started yet
        return BackupStatus("lagging", 0.0, 0, None)
    lag = float(row.lag or 0.0)
    failing = row.last_error_at is not None and (row.synced_at is None or row.last_error_at > row.synced_at)
    state = "failing" if failing else "lagging" if lag > lag_threshold else "ok"
    return BackupStatus(state, lag, int(row.failures), row.last_error)


class BackupSyncer:
    def __init__(
        self,
        database_url: str,
        store: BackupStore,
        hub: EventHub | None = None,
        lag_threshold: float = 60.0,
        on_synced: Callable[[list[Any], datetime], None] | None = None,
    ) -> None:
        self.store = store
        self.name = store.url
        self.hub = hub
        self.lag_threshold = lag_threshold
        # Called after each pass with its events and when the store had them (the benchmark's probe).
        self.on_synced = on_synced
        self._engine: AsyncEngine = create_async_engine(
            normalize_url(database_url), poolclass=NullPool, connect_args={"options": SESSION_OPTIONS}
        )
        self._task: asyncio.Task | None = None
        self.holding = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tracker-backup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._engine.dispose()

    async def _run(self) -> None:
        while True:
            try:
                async with self._engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: the lock went with the session
                if self.holding:
                    log.warning("backup syncer lost its database connection (%s); retrying", exc)
                self.holding = False
            await asyncio.sleep(TAKEOVER_SECONDS)

    async def _serve(self, conn: AsyncConnection) -> None:
        """Wait for the lock (reporting the lag meanwhile), then sync until the connection fails."""
        await conn.execute(_INIT, {"name": self.name})
        while not (await conn.execute(_LOCK, {"c": LOCK_CLASS, "name": self.name})).scalar_one():
            await self._report(conn)
            await asyncio.sleep(TAKEOVER_SECONDS)
        self.holding = True
        log.info("backup syncer started: this process copies changes to %s", self.store.url)
        try:
            await self._sync(conn)
        finally:
            self.holding = False

    async def _sync(self, conn: AsyncConnection) -> None:
        failures = 0
        with self.hub.subscribe(ALL_TENANTS) if self.hub else contextlib.nullcontext() as sub:
            while True:
                try:
                    done = await sync_once(conn, self.store, self.name, self.on_synced)
                except SQLAlchemyError:
                    raise  # the database, not the store: _run reconnects (and retakes the lock)
                except Exception as exc:  # the store, or an object that cannot be built: logged, retried
                    failures += 1
                    reason = exc.detail if isinstance(exc, BackupUnavailable) else f"{type(exc).__name__}: {exc}"
                    BACKUP_FAILURES.inc()
                    await conn.execute(_FAILED, {"name": self.name, "error": reason[:500]})
                    delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(failures, 8))
                    log.warning("backup pass failed (%d in a row, next try in %.1fs): %s", failures, delay, reason)
                    await self._report(conn)
                    await asyncio.sleep(delay)
                    continue
                if failures:
                    log.info("backup store reachable again after %d failed passes", failures)
                    failures = 0
                if done < 0:  # a committed event waits behind a running transaction: no NOTIFY will come
                    await asyncio.sleep(BLOCKED_RECHECK_SECONDS)
                elif done < BATCH:
                    await self._report(conn)
                    if sub is not None:
                        await sub.wait(IDLE_POLL_SECONDS)
                    else:
                        await asyncio.sleep(IDLE_POLL_SECONDS)

    async def _report(self, conn: AsyncConnection) -> None:
        status = await backup_status(conn, self.name, self.lag_threshold)
        BACKUP_LAG.set(status.lag_seconds)


async def sync_once(
    conn: AsyncConnection,
    store: BackupStore,
    name: str,
    on_synced: Callable[[list[Any], datetime], None] | None = None,
) -> int:
    """One pass: read final events after the cursor, write their objects, move the cursor. Returns how
    many events it covered (-1: none, but some wait behind a running transaction). Raises
    BackupUnavailable (cursor unmoved) when the store fails."""
    rows = (await conn.execute(_READ, {"name": name, "limit": BATCH})).all()
    # Ordered by txid: once one is not final (its transaction, or an older one, still runs), none after it is.
    events = list(itertools.takewhile(lambda r: r.final, rows))
    if not events:
        return -1 if rows else 0
    started = time.perf_counter()
    work = await plan.changes(conn, events)
    await asyncio.to_thread(_apply, store, work)
    last = events[-1]
    await conn.execute(_ADVANCE, {"name": name, "txid": last.txid, "id": last.id})
    now = datetime.now(UTC)
    for ev in events:
        BACKUP_DELAY.observe(max(0.0, (now - ev.created_at).total_seconds()))
    BACKUP_OBJECTS.labels("write").inc(sum(1 for v in work.values() if v is not None))
    BACKUP_OBJECTS.labels("delete").inc(sum(1 for v in work.values() if v is None))
    log.debug("backup pass: %d events, %d objects, %.3fs", len(events), len(work), time.perf_counter() - started)
    if on_synced is not None:
        on_synced(events, now)
    return len(events)


def _apply(store: BackupStore, work: plan.Changes) -> None:
    puts = {path: data for path, data in work.items() if data is not None}
    for path, data in work.items():
        if data is None:
            store.delete(path)
    store.put_many(puts)
