"""Revoking a key ends its open MCP sessions on the bridge, within about a second.

The tracker refuses a revoked key on every request, so a revoked key's session could already do
nothing; but it stayed open, and its client learned of the revocation only from a 401 on each
call. Now, while a key has at least one open MCP session, the bridge holds one tracker stream for
that key (``GET /whoami/watch``, one per key however many sessions it has), and when the tracker
says the key was revoked, the bridge ends every session that key opened: the client's next request
on one gets 404 ("Session not found").

- A stream that drops for any other reason (tracker restart, network, a 5xx) is reopened with
  capped, jittered backoff, and the sessions stay. A reopen answered with 401 means the key was
  revoked meanwhile: the sessions end.
- A key the tracker refuses from its first answer on (a wrong key, or one revoked before its session
  opened) is not watched: its sessions stay open and each tool call answers 401, as before. So that
  "first answer" means "before the client could use the session", the answer that gives a client a
  new session id waits for the watch's first answer (at most the tracker timeout).
- A key's watch stops when its last session ends: at once when a client deletes its session, and at
  the stream's next keep-alive (every 15 s) when the SDK ended one itself (idle timeout).

Everything runs in the server's event loop. Logs name a key by a prefix of its SHA-256, never the key.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx2
from anyio.abc import TaskGroup
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .client import USER_AGENT

log = logging.getLogger(__name__)

WATCH_PATH = "/whoami/watch"
#: The tracker sends a keep-alive comment every 15 s; three missed ones mean the connection is dead.
READ_TIMEOUT = 45.0
_SESSION_HEADER = MCP_SESSION_ID_HEADER.lower().encode("latin-1")


def key_digest(key: str) -> str:
    """The SHA-256 of a key: how sessions are bound to it (``ForwardedKey.client_id``) and named in logs."""
    return hashlib.sha256(key.encode()).hexdigest()


def _label(digest: str) -> str:
    return f"key sha256:{digest[:12]}"


class SdkSessions:
    """The SDK session manager's own table of open sessions; the one place that relies on its internals.

    The SDK (mcp 2.3.0) offers no public way to list a principal's sessions or to end one from the
    server side, so this reads ``mcp/server/streamable_http_manager.py``:

    - ``_server_instances`` (line 118): session id -> ``StreamableHTTPServerTransport``, for every open
      stateful session;
    - ``_session_owners`` (line 121): session id -> the ``AuthorizationContext`` of the credential that
      opened it; its ``client_id`` is ``ForwardedKey``'s SHA-256 of the key, which the manager compares
      on every request (lines 270-280).

    A session is ended with the transport's public ``terminate()`` (``mcp/server/streamable_http.py``
    line 848), as a client's DELETE does: from then on a request for it answers 404 (line 511), its
    message loop ends, and the manager forgets it (``_discard_session``, lines 384-395, called from the
    session task's ``finally`` at line 372). tests/mcp/test_revocation.py fails if any of this changes.
    """

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager

    def is_open(self, session_id: str) -> bool:
        return session_id in self._manager._server_instances

    def of_key(self, digest: str) -> list[str]:
        """Ids of the open sessions opened with the key whose SHA-256 is ``digest``."""
        owners = self._manager._session_owners
        return [session_id for session_id, owner in list(owners.items()) if owner["client_id"] == digest]

    async def end(self, session_id: str) -> None:
        transport = self._manager._server_instances.get(session_id)
        if transport is not None and not transport.is_terminated:
            await transport.terminate()


@dataclass
class Backoff:
    """Delays before reopening a dropped stream: ``first``, doubling up to ``cap``, each with jitter."""

    first: float = 0.5
    cap: float = 15.0
    failures: int = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2 ** min(self.failures, 30))
        self.failures += 1
        # Jitter: after a tracker restart, every key's watch would otherwise reconnect at the same instant.
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


@dataclass(eq=False)
class Watch:
    """One key's stream and the sessions it guards."""

    digest: str
    key: str = field(repr=False)
    sessions: set[str] = field(default_factory=set)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    #: Set once the tracker first answered (or the first attempt failed): new sessions wait for it.
    answered: anyio.Event = field(default_factory=anyio.Event)
    #: The tracker accepted the key at least once: a 401 from now on means it was revoked.
    accepted: bool = False


class KeyWatches:
    """One ``/whoami/watch`` stream per key with open sessions; ends the key's sessions on revocation."""

    def __init__(self, sessions: SdkSessions, base_url: str, timeout: float) -> None:
        self._sessions = sessions
        self._url = base_url + WATCH_PATH
        self._timeout = timeout
        self._watches: dict[str, Watch] = {}
        self._group: TaskGroup | None = None
        self._http: httpx2.AsyncClient | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Hold the HTTP client and the watches' task group (for the server's lifespan)."""
        # Each watched key holds one connection for as long as it is watched: no pool limit, or
        # the 101st key would wait for a free connection instead of being watched.
        limits = httpx2.Limits(max_connections=None)
        timeout = httpx2.Timeout(self._timeout, read=READ_TIMEOUT)
        headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream"}
        async with (
            httpx2.AsyncClient(timeout=timeout, limits=limits, headers=headers) as http,
            anyio.create_task_group() as group,
        ):
            self._http, self._group = http, group
            try:
                yield
            finally:
                group.cancel_scope.cancel()
                self._group = None
                self._watches.clear()

    def opened(self, session_id: str, key: str) -> Watch:
        """Note a session opened with ``key``; start the key's watch if it has none."""
        if self._group is None:
            raise RuntimeError("KeyWatches.running() must be entered first (the server's lifespan does it)")
        digest = key_digest(key)
        watch = self._watches.get(digest)
        if watch is None:
            watch = self._watches[digest] = Watch(digest, key)
            self._group.start_soon(self._follow, watch, name=f"watch of {_label(digest)}")
        watch.sessions.add(session_id)
        return watch

    def session_ended(self, key: str) -> None:
        """A session of ``key`` may have ended: stop its watch if it guards none any more."""
        watch = self._watches.get(key_digest(key))
        if watch is not None and not self._has_sessions(watch):
            watch.scope.cancel()

    async def _follow(self, watch: Watch) -> None:
        backoff = Backoff()
        try:
            with watch.scope:
                while self._has_sessions(watch):
                    try:
                        dropped = await self._listen(watch, backoff)
                    except httpx2.HTTPError as exc:  # refused, reset, timed out: the tracker or the network
                        dropped = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    if dropped is None:
                        return
                    # A first attempt that failed must not hold up the new session's answer any longer.
                    watch.answered.set()
                    delay = backoff.next()
                    # Once per outage at warning; the retries that follow at debug.
                    level = logging.WARNING if backoff.failures == 1 else logging.DEBUG
                    label = _label(watch.digest)
                    log.log(level, "watch of %s dropped (%s); reopening in %.1f s", label, dropped, delay)
                    await anyio.sleep(delay)
        except Exception:
            # A fault here must end this watch only: raised into the task group, it would stop the server.
            log.exception("watch of %s failed; its sessions stay open, unwatched", _label(watch.digest))
        finally:
            watch.answered.set()
            self._forget(watch)

    async def _listen(self, watch: Watch, backoff: Backoff) -> str | None:
        """Follow one connection of the stream. None: the watch is over; else why the stream dropped."""
        assert self._http is not None
        async with self._http.stream("GET", self._url, headers={"Authorization": f"Bearer {watch.key}"}) as resp:
            if resp.status_code == 401:
                await self._refused(watch)
                return None
            if resp.status_code != 200:
                return f"the tracker answered {resp.status_code}"
            log.info(
                "%s %s: watching it for revocation (%d session(s))",
                _label(watch.digest),
                "reconnected" if watch.accepted else "accepted",
                len(watch.sessions),
            )
            watch.accepted = True
            watch.answered.set()
            backoff.reset()
            event, data = "", []
            async for line in resp.aiter_lines():
                if line.startswith(":"):
                    # A keep-alive: the moment to notice sessions the SDK ended by itself (idle timeout).
                    if not self._has_sessions(watch):
                        return None
                elif line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data.append(line.removeprefix("data:").strip())
                elif not line:
                    if event == "revoked":
                        await self._end_sessions(watch, f"was revoked ({' '.join(data)})")
                        return None
                    event, data = "", []
            return "the tracker closed the stream"

    async def _refused(self, watch: Watch) -> None:
        if watch.accepted:
            await self._end_sessions(watch, "was refused (401) when its watch reconnected")
            return
        log.info(
            "the tracker refuses %s (401): not watching it; its sessions stay open and each tool call answers 401",
            _label(watch.digest),
        )

    async def _end_sessions(self, watch: Watch, why: str) -> None:
        # Forgotten first: a session opened from now on gets a watch of its own, whose first answer is a 401.
        self._forget(watch)
        session_ids = self._sessions.of_key(watch.digest)
        log.warning("%s %s: ending its %d MCP session(s)", _label(watch.digest), why, len(session_ids))
        with anyio.CancelScope(shield=True):  # never leave half of them open on shutdown
            for session_id in session_ids:
                await self._sessions.end(session_id)

    def _has_sessions(self, watch: Watch) -> bool:
        watch.sessions = {session_id for session_id in watch.sessions if self._sessions.is_open(session_id)}
        return bool(watch.sessions)

    def _forget(self, watch: Watch) -> None:
        if self._watches.get(watch.digest) is watch:
            del self._watches[watch.digest]


class WatchSessions:
    """ASGI middleware on the MCP path: tells ``KeyWatches`` which key opened which session, and when a
    client deleted one.

    It sits inside the authentication middleware, where ``scope["user"]`` carries the caller's key.
    """

    def __init__(self, app: ASGIApp, watches: KeyWatches, path: str, wait: float) -> None:
        self.app = app
        self.watches = watches
        self.path = path
        self.wait = wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] != "http" or scope["path"] != self.path or not isinstance(user, AuthenticatedUser):
            await self.app(scope, receive, send)
            return
        key = user.access_token.token
        if _session_id(scope) is not None:
            await self.app(scope, receive, send)
            if scope["method"] == "DELETE":
                self.watches.session_ended(key)
            return

        async def send_when_watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                session_id = _session_id(message)
                if session_id is not None:
                    watch = self.watches.opened(session_id, key)
                    # The client learns its session id once the key's watch has its first answer, so
                    # a revocation from then on reaches the session.
                    with anyio.move_on_after(self.wait):
                        await watch.answered.wait()
            await send(message)

        await self.app(scope, receive, send_when_watched)


def _session_id(scope_or_message: Scope | Message) -> str | None:
    for name, value in scope_or_message.get("headers", ()):
        if name.lower() == _SESSION_HEADER:
            return value.decode("latin-1")
    return None
