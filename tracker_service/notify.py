"""One LISTEN connection per tracker process, fanned out to in-process waiters by tenant.

After a write commits, the request calls `changed(tenant)`: local waiters wake at once, and the
tenant goes out to the other tracker processes as `NOTIFY tracker_events` on a connection of the
hub's own, coalesced. The NOTIFY is deliberately not sent inside the writing transaction: a
notifying commit holds PostgreSQL's global notify lock through its WAL flush, which serialized
every concurrent write (claims at 8-32 clients ran at ~60% of the same statement without it).
SSE streams and synchronous delegation wait here instead of polling; they also re-read on a
timeout, which bounds what a lost notification (a crash right after a commit) can cost.

The same LISTEN connection hears `tracker_keys` (any change to api_keys) and keeps the process's
key cache honest: emptied on every change, and off while the connection is down, when changes
could go unheard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from tracker_service.domain.keys.service import PrincipalCache

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("tracker.notify")
# Other processes' streams hear a write at most this much later (this process's at once).
NOTIFY_PACE_SECONDS = 0.01
CHANNEL = "tracker_events"
KEYS_CHANNEL = "tracker_keys"
EVERYONE = "*"  # payload for changes across tenants (the sweeper's)
# Subscribe to it to be woken by a change of any tenant (the backup syncer follows every tenant).
ALL_TENANTS = "**"


class Subscription:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        # Set when any API key changed (or changes may have gone unheard): a long-lived request
        # re-checks its own key then, so a revocation ends it within the notification's delay.
        self.keys_changed = False

    def wake(self, keys_changed: bool = False) -> None:
        self.keys_changed = self.keys_changed or keys_changed
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for a notification (or the timeout); True when one came. Resets for the next wait."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class EventHub:
    def __init__(
        self,
        database_url: str,
        keys: PrincipalCache | None = None,
        on_lost: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        # psycopg wants a libpq URL, not SQLAlchemy's postgresql+psycopg://.
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self.keys = keys or PrincipalCache(ttl=0)
        # Called once when a working LISTEN connection breaks: the database went away, so the
        # app drops its pooled connections rather than fail one request on each of them later.
        self._on_lost = on_lost
        self._outbox: set[str] = set()
        self._sender: asyncio.Task | None = None
        self._send_conn: psycopg.AsyncConnection | None = None

    def changed(self, tenant: str) -> None:
        """A write of `tenant` committed in this process: wake local waiters, tell the others."""
        if tenant == EVERYONE:
            self._wake_all()
        else:
            self._wake(tenant)
        self._outbox.add(tenant)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="tracker-notify")

    async def _send(self) -> None:
        import psycopg

        while self._outbox:
            tenants = sorted(self._outbox)
            self._outbox.clear()
            try:
                if self._send_conn is None or self._send_conn.closed:
                    self._send_conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                await self._send_conn.execute(
                    "SELECT pg_notify(%s, t) FROM unnest(%s::text[]) AS t", (CHANNEL, tenants)
                )
            except Exception as exc:  # waiters elsewhere re-read on their timeout; nothing is lost
                log.warning("could not notify other tracker processes (%s)", exc)
                await self._close_sender()
                return
            # Writes of the next few milliseconds go out together: under load this sent one
            # NOTIFY per write, which every tracker process (this one too) then had to hear.
            await asyncio.sleep(NOTIFY_PACE_SECONDS)

    async def _close_sender(self) -> None:
        conn, self._send_conn = self._send_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tracker-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender  # the last writes' notifications go out before shutdown
        await self._close_sender()
        self.keys.set_listening(False)

    @contextlib.contextmanager
    def subscribe(self, tenant: str) -> Iterator[Subscription]:
        """Register before reading, so a notification between the read and the wait is not lost."""
        sub = Subscription()
        self._subscribers[tenant].add(sub)
        try:
            yield sub
        finally:
            self._subscribers[tenant].discard(sub)
            if not self._subscribers[tenant]:
                del self._subscribers[tenant]

    def _wake(self, tenant: str) -> None:
        for sub in (*self._subscribers.get(tenant, ()), *self._subscribers.get(ALL_TENANTS, ())):
            sub.wake()

    def _wake_all(self, keys_changed: bool = False) -> None:
        for subs in self._subscribers.values():
            for sub in subs:
                sub.wake(keys_changed)

    @property
    def listening(self) -> bool:
        """True while key changes are heard; long-lived requests re-check their key often otherwise."""
        return self.keys.listening

    async def _run(self) -> None:
        import psycopg

        delay = 0.1
        listening = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {KEYS_CHANNEL}")
                    delay = 0.1
                    listening = True
                    self.keys.set_listening(True)
                    self._wake_all(keys_changed=True)  # whatever happened while we were not listening
                    async for note in conn.notifies():
                        if note.channel == KEYS_CHANNEL:
                            self.keys.clear()
                            self._wake_all(keys_changed=True)
                        elif note.payload == EVERYONE:
                            self._wake_all()
                        else:
                            self._wake(note.payload)
            except asyncio.CancelledError:
                self.keys.set_listening(False)
                raise
            except Exception as exc:  # the database went away: wake everyone, retry with backoff
                self.keys.set_listening(False)
                log.warning("LISTEN connection lost (%s); retrying in %.1f s", exc, delay)
                self._wake_all(keys_changed=True)
                if listening and self._on_lost is not None:
                    listening = False
                    with contextlib.suppress(Exception):
                        await self._on_lost()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
