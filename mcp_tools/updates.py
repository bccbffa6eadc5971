"""Resource updates: a client listening to `tracker://tasks/{ref}` or `tracker://handoffs/{id}`
(`subscriptions/listen`, MCP 2026-07-28) hears `notifications/resources/updated` when it changes.

The SDK's listen handler filters the events of a bus by the URIs each stream asked for; this bus
feeds itself from the tracker's own event stream (`GET /events`) while at least one stream
listens, and stops following it when the last one ends. A task event names the task by UUID, so
its key is looked up once (and remembered) to update `tracker://tasks/TASK-012` as well.

Over stdio the process has one key, so one tenant, and one bus. Over streamable HTTP each client
sends its own key and URIs like `tracker://tasks/TASK-001` exist in every tenant, so a shared bus
would tell one tenant of another's changes: there each key has its own bus (``KeyBuses``), and
both `subscriptions/listen` (``PerKeyBus``) and `resources/subscribe` (protocols up to 2025-11-25,
what most clients speak: ``ResourceSubscriptions``) listen on the bus of the caller's key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx2
from mcp import types
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent, SubscriptionBus
from mcp.shared.exceptions import MCPError

from .client import USER_AGENT
from .config import Config
from .revocation import key_digest

log = logging.getLogger(__name__)
READ_TIMEOUT = 45.0  # the tracker sends a keep-alive every 15 s
KEYS_REMEMBERED = 10_000
SUBSCRIBABLE = ("tracker://tasks/", "tracker://handoffs/")


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

    @property
    def listening(self) -> bool:
        return self._listening > 0

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


class ResourceSubscriptions:
    """``resources/subscribe`` and ``resources/unsubscribe``, as clients of protocols up to 2025-11-25
    (Claude Code, Claude Desktop, Inspector) ask for resource updates, over the same buses.

    ``bus_for`` gives the bus of the caller's key: the process's one bus over stdio; over streamable
    HTTP one per key (``KeyBuses``), so a session hears only its own tenant's changes. A session's
    subscriptions end with ``resources/unsubscribe`` of its last URI, or with the session itself
    (its connection is held weakly: when the SDK lets go of it, the subscriber stops listening).

    The SDK (mcp 2.3.0) routes these methods to the low-level server's handlers and derives the
    ``resources.subscribe`` capability from their presence; ``MCPServer`` has no public way to add
    one, hence ``_lowlevel_server``. A handler's ``ctx.session`` is a proxy made per request; the
    session it stands for is its ``_connection`` (``mcp/server/session.py``), whose ``outbound`` is
    the channel for notifications outside any request. tests/mcp/test_updates.py fails if either
    changes.
    """

    def __init__(self, bus_for: Callable[[], SubscriptionBus]) -> None:
        self._bus_for = bus_for
        self._subscribers: dict[int, _Subscriber] = {}

    def register(self, server: MCPServer) -> None:
        lowlevel = server._lowlevel_server  # see the class docstring
        lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, self._unsubscribe)

    async def _subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        uri = str(params.uri)
        if not uri.startswith(SUBSCRIBABLE):
            raise MCPError(
                types.INVALID_PARAMS,
                f"{uri} never changes here: subscribe to tracker://tasks/<key or UUID> or tracker://handoffs/<id>",
            )
        connection = ctx.session._connection  # see the class docstring
        subscriber = self._subscribers.get(id(connection))
        if subscriber is None:
            subscriber = _Subscriber(connection, self._forget)
            subscriber.stop = self._bus_for().subscribe(subscriber.heard)
            self._subscribers[id(connection)] = subscriber
        subscriber.uris.add(uri)
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        subscriber = self._subscribers.get(id(ctx.session._connection))
        if subscriber is not None:
            subscriber.uris.discard(str(params.uri))
            if not subscriber.uris:
                subscriber.end()
        return types.EmptyResult()

    @property
    def sessions(self) -> int:
        return len(self._subscribers)

    def _forget(self, subscriber: _Subscriber) -> None:
        if self._subscribers.get(subscriber.ident) is subscriber:
            del self._subscribers[subscriber.ident]


class _Subscriber:
    def __init__(self, connection: Any, forget: Callable[[_Subscriber], None]) -> None:
        self.ident = id(connection)
        self.uris: set[str] = set()
        self.stop: Callable[[], None] = lambda: None
        self._forget = forget
        self._connection = weakref.ref(connection, lambda _: self.end())

    def heard(self, event: ServerEvent) -> None:
        if isinstance(event, ResourceUpdated) and event.uri in self.uris:
            asyncio.get_running_loop().create_task(self._send(event.uri))

    async def _send(self, uri: str) -> None:
        connection = self._connection()
        if connection is None:
            self.end()
            return
        try:
            await connection.outbound.notify("notifications/resources/updated", {"uri": uri})
        except Exception as exc:  # noqa: BLE001 - a closed session fails in transport-specific ways
            log.info("resource updates: a subscribed session is gone (%s); dropping it", type(exc).__name__)
            self.end()

    def end(self) -> None:
        self.stop()
        self._forget(self)


class PerKeyBus:
    """The bus the SDK's `subscriptions/listen` handler listens on over streamable HTTP: each listen
    stream subscribes to the bus of its own request's key (``KeyBuses``), so it hears only its own
    tenant's changes. The tracker's events reach each key's bus directly; an event the server itself
    publishes (none today) would go to every bus that is listened to.
    """

    def __init__(self, buses: KeyBuses) -> None:
        self._buses = buses

    async def publish(self, event: ServerEvent) -> None:
        for bus in self._buses.listening():
            await bus.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        return self._buses().subscribe(listener)


class KeyBuses:
    """Over streamable HTTP: one ``TrackerUpdates`` per key, made on its first subscription (it
    follows the tracker's ``/events`` only while someone listens)."""

    def __init__(self, config: Config, key: Callable[[], str]) -> None:
        self._config = config
        self._key = key
        self._buses: dict[str, TrackerUpdates] = {}

    def __call__(self) -> SubscriptionBus:
        key = self._key()
        digest = key_digest(key)
        bus = self._buses.get(digest)
        if bus is None:
            if len(self._buses) >= KEYS_REMEMBERED:
                self._buses = {d: b for d, b in self._buses.items() if b.listening}
            bus = self._buses[digest] = TrackerUpdates(replace(self._config, api_key=key))
        return bus

    def listening(self) -> list[TrackerUpdates]:
        return [bus for bus in self._buses.values() if bus.listening]
