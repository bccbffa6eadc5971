"""Delegation: a delegated task is an ordinary task with a type, claimed by workers.

Creating it commits before any waiting (a worker must see it); a synchronous caller then
waits on the tenant's notifications, never polling the database in a loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from tracker_service.domain.delegation.schemas import (
    DelegatedStatus,
    DelegateIn,
    DelegateOut,
    DelegateResult,
    priority_level,
)
from tracker_service.domain.keys.service import Principal, wait_while_valid
from tracker_service.domain.tasks.schemas import TaskIn, TaskOut
from tracker_service.domain.tasks.service import TaskService
from tracker_service.errors import Timeout
from tracker_service.idempotency import claim_idempotency_key, store_body
from tracker_service.notify import EventHub
from tracker_service.settings import Settings

FINISHED = ("completed", "failed", "cancelled")


def delegated_result(task: TaskOut) -> DelegateResult | None:
    """The worker's {success, output, error}; built from the status when a worker left none."""
    raw: Any = task.result
    if isinstance(raw, dict) and "success" in raw:
        return DelegateResult(
            success=bool(raw.get("success")), output=_text(raw.get("output")), error=_text(raw.get("error"))
        )
    if task.status == "completed":
        return DelegateResult(success=True, output=_text(raw) or task.completion_notes, error=None)
    if task.status == "failed":
        return DelegateResult(success=False, output=_text(raw), error=task.completion_notes)
    return None


def status_of(task: TaskOut) -> DelegatedStatus:
    return DelegatedStatus(
        task_id=task.id,
        key=task.key,
        status=task.status,
        result=delegated_result(task),
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


RECHECK_SECONDS = 5.0


class DelegationService:
    def __init__(self, engine: AsyncEngine, hub: EventHub, principal: Principal, settings: Settings) -> None:
        self.engine = engine
        self.hub = hub
        self.principal = principal
        self.settings = settings

    async def delegate(self, data: DelegateIn, idempotency: tuple[str, str] | None) -> DelegateOut:
        task_id = await self._create(data, idempotency)
        self.hub.changed(self.principal.tenant)  # committed: watchers see the new task now
        if not data.sync:
            return DelegateOut(task_id=task_id, status="delegated")
        task = await self._wait(task_id, data.wait_seconds)
        return DelegateOut(task_id=task.id, status=task.status, result=delegated_result(task))

    async def _create(self, data: DelegateIn, idempotency: tuple[str, str] | None) -> UUID:
        async with self.engine.begin() as conn:
            if idempotency is not None:
                key, request_hash = idempotency
                stored = await claim_idempotency_key(conn, self.principal, key, request_hash)
                if stored is not None:
                    return UUID(json.loads(stored.body())["task_id"])
            first_line = next((line.strip() for line in data.prompt.splitlines() if line.strip()), data.type)
            task = await TaskService(conn, self.principal, self.settings).create(
                TaskIn(
                    project=data.options.get("project") or self.settings.delegation_project,
                    title=first_line[:500],
                    description=data.prompt,
                    priority=priority_level(data.priority),
                    type=data.type,
                    tags=["delegated"],
                    inputs={"files": data.files, "options": data.options},
                )
            )
            if idempotency is not None:
                body = json.dumps({"task_id": str(task.id)}).encode()
                await store_body(conn, self.principal, idempotency[0], 200, "application/json", body)
            return task.id

    async def _wait(self, task_id: UUID, seconds: float) -> TaskOut:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with self.hub.subscribe(self.principal.tenant) as sub:
            while True:
                async with self.engine.connect() as conn:
                    task = await TaskService(conn, self.principal, self.settings).get(str(task_id))
                if task.status in FINISHED:
                    return task
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise Timeout(
                        f"task {task_id} did not finish within {seconds:g} s; it stays queued: "
                        f"GET /task/{task_id}/status for its result later",
                        task_id=str(task_id),
                        task_status=task.status,
                    )
                # Woken by the task's change; the re-read bound covers a notification lost in a crash.
                # A revoked key ends the wait with a 401.
                await wait_while_valid(sub, self.hub, self.engine, self.principal, min(remaining, RECHECK_SECONDS))
