"""Periodic housekeeping in each tracker process: hand back tasks whose lease lapsed, archive
expired handoffs, drop old idempotency records, fold the task totals' rows.

Every statement is idempotent, so several tracker processes sweeping one database is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker_service.domain.handoffs.service import archive_expired
from tracker_service.domain.tasks.housekeeping import fold_task_totals, lapse_expired_leases
from tracker_service.metrics import LEASE_EXPIRIES
from tracker_service.notify import EVERYONE, EventHub

log = logging.getLogger("tracker.sweeper")

IDEMPOTENCY_RETENTION = "24 hours"


async def sweep_once(engine: AsyncEngine) -> int:
    """One round; returns how many tasks and handoffs it changed."""
    async with engine.begin() as conn:
        lapsed = await lapse_expired_leases(conn)
    if lapsed:
        LEASE_EXPIRIES.inc(lapsed)
        log.info("%d task leases lapsed; the tasks are pending again", lapsed)
    async with engine.begin() as conn:
        archived = await archive_expired(conn)
        await conn.execute(
            text(f"DELETE FROM idempotency_records WHERE created_at < now() - interval '{IDEMPOTENCY_RETENTION}'")
        )
    async with engine.begin() as conn:
        await fold_task_totals(conn)
    if archived:
        log.info("archived %d expired handoffs", archived)
    return lapsed + archived


class Sweeper:
    def __init__(self, engine: AsyncEngine, hub: EventHub, interval_seconds: int) -> None:
        self.engine = engine
        self.hub = hub
        self.interval = max(1, interval_seconds)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tracker-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                if await sweep_once(self.engine):
                    self.hub.changed(EVERYONE)  # lapsed leases and archived handoffs are logged events
            except Exception as exc:  # the database may be down for a while; try again next round
                log.warning("sweep failed: %s", exc)
            await asyncio.sleep(self.interval)
