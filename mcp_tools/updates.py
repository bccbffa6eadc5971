"""Resource updates: a client listening to `tracker://tasks/{ref}` or `tracker://handoffs/{id}`
(`subscriptions/listen`, MCP 2026-07-28) hears `notifications/resources/updated` when it changes.

The SDK's listen handler filters the events of a bus by the URIs each stream asked for; this bus
feeds itself from the tracker's own event stream (`GET /events`) while at least one stream
listens, and stops following it when the last one ends. A task event names the task by UUID, so
its key is looked up once (and remembered) to update `tracker://tasks/TASK-012` as well.

Over stdio only: the process has one key, so one tenant. Over streamable HTTP each client sends its
own key and URIs like `tracker://tasks/TASK-001` exist in every tenant; a shared bus would tell one
tenant of another's changes, so the HTTP bridge does not serve `subscriptions/listen`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx2
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent

from .client import USER_AGENT
from .config import Config

log = logging.getLogger(__name__)
READ_TIMEOUT = 45.0  # the tracker sends a keep-alive every 15 s
KEYS_REMEMBERED = 10_000


class TrackerUpdates(InMemorySubscriptionBus):
    """A subscription bus fed by the tracker's `/events` while anyone listens."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self._base = config.base_url
        self._headers = {"Authorization": f"Bearer {config.api_key}", "User-Agent": USER_AGENT}
        self._timeout = config.timeout
        self._listening = 0
        self._task: asyncio.Task[None] | None = None
        self._keys: dict[str, str] = {}

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        unsubscribe = super().subscribe(listener)
        self._listening += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow(), name="tracker-updates")
        done = False

        def stop_listening() -> None:
            nonlocal done
            unsubscribe()
            if not done:
                done = True
                self._listening -= 1
                if self._listening == 0 and self._task is not None:
                    self._task.cancel()

        return stop_listening

    async def _follow(self) -> None:
        """Follow /events from now on; reconnect with capped, jittered backoff, resuming after the
        last event seen; stop on 401/403 (the key is revoked: nothing more will change for it)."""
        timeout = httpx2.Timeout(self._timeout, read=READ_TIMEOUT)
        last: str | None = None
        delay = 0.5
        async with httpx2.AsyncClient(timeout=timeout, headers=self._headers) as http:
            while True:
                headers = {"Last-Event-ID": last} if last else {}
                try:
                    async with http.stream("GET", f"{self._base}/events", headers=headers) as resp:
                        if resp.status_code in (401, 403):
                            log.warning("resource updates stopped: the tracker refused the key (%s)", resp.status_code)
                            return
                        resp.raise_for_status()
                        delay = 0.5
                        last = await self._read(http, resp, last)
                except (httpx2.HTTPError, ValueError) as exc:
                    log.info("resource updates: the event stream dropped (%s); reconnecting", exc)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)

    async def _read(self, http: httpx2.AsyncClient, resp: Any, last: str | None) -> str | None:
        kind: str | None = None
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("id:"):
                last = line[3:].strip()
            elif line.startswith("data:") and kind:
                if kind == "revoked":
                    return last
                await self._changed(http, kind, json.loads(line[5:]))
            elif not line:
                kind = None
        return last

    async def _changed(self, http: httpx2.AsyncClient, kind: str, entry: dict[str, Any]) -> None:
        entity = entry.get("id")
        if not entity:
            return
        if kind.startswith("task."):
            uris = [f"tracker://tasks/{entity}"]
            if key := await self._key_of(http, entity):
                uris.append(f"tracker://tasks/{key}")
        elif kind.startswith("handoff."):
            uris = [f"tracker://handoffs/{entity}"]
        else:
            return
        for uri in uris:
            await self.publish(ResourceUpdated(uri=uri))

    async def _key_of(self, http: httpx2.AsyncClient, task_id: str) -> str | None:
        """A task's key, from the tracker once (a deleted task keeps the key it was seen with)."""
        if task_id in self._keys:
            return self._keys[task_id]
        try:
            resp = await http.get(f"{self._base}/tasks/{task_id}")
        except httpx2.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        if len(self._keys) >= KEYS_REMEMBERED:
            self._keys.clear()
        key = self._keys[task_id] = str(resp.json()["key"])
        return key
