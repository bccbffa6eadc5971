"""Revoking a key ends the bridge's open MCP sessions of that key, and no other (``mcp_tools.revocation``).

Sessions are what clients open with the initialize handshake (protocol 2025-11-25 and before; the
SDK's client does so with ``mode="legacy"``); a 2026-07-28 client is sessionless, and its calls with
a revoked key simply answer 401.

The first tests run the bridge in process against ``WatchTracker``, a tracker whose watch streams
the test ends at will (revoke, drop, refuse); the last ones run the real ``tracker-mcp`` process
against a real tracker and revoke the key in its database.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from mcp_tools.config import Config
from mcp_tools.revocation import Backoff, SdkSessions, key_digest
from tests.conftest import start_tracker
from tracker_service.domain.keys.service import revoke_key

from .bridge_support import ok, running_bridge
from .conftest import WatchTracker
from .test_http import INITIALIZE, MCP_HEADERS, free_port
from .test_http_integration import http_bridge

#: "About a second", with room for a loaded machine (the tracker's own revocation tests use the same).
REVOCATION_BOUND_SECONDS = 3.0
LIST_TOOLS = {"jsonrpc": "2.0", "id": 99, "method": "tools/list"}


@asynccontextmanager
async def mcp_session(url: str, key: str) -> AsyncIterator[tuple[Client, str]]:
    """An MCP session opened with the initialize handshake, and the session id the bridge gave it."""
    session_ids: list[str] = []

    async def note_session_id(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers and not session_ids:
            session_ids.append(response.headers["mcp-session-id"])

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, event_hooks={"response": [note_session_id]}) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as mcp:
            yield mcp, session_ids[0]


async def session_status(url: str, key: str, session_id: str) -> int:
    """What the bridge answers a ``tools/list`` on ``session_id`` with: 200, or 404 once the session is gone."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {key}", "Mcp-Session-Id": session_id}
    async with httpx2.AsyncClient(timeout=10) as http:
        resp = await http.post(f"{url}/mcp", json=LIST_TOOLS, headers={**headers, "Mcp-Protocol-Version": "2025-11-25"})
        return resp.status_code


async def seconds_until_gone(url: str, key: str, session_id: str, since: float) -> float:
    """Seconds from ``since`` (a ``time.monotonic()``) until ``session_id`` answers 404; fails past the bound."""
    while (elapsed := time.monotonic() - since) < REVOCATION_BOUND_SECONDS:
        try:
            status = await session_status(url, key, session_id)
        except httpx2.RemoteProtocolError:  # the session ended while answering this very request
            continue
        if status == 404:
            return time.monotonic() - since
        assert status == 200, status
        await anyio.sleep(0.01)
    raise AssertionError(f"session still open {elapsed:.2f} s after the revocation")


async def eventually(condition: Callable[[], Any], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await anyio.sleep(0.01)


async def works(mcp: Client) -> None:
    assert "get_next_task" in [tool.name for tool in (await mcp.list_tools()).tools]


def in_process_bridge(tracker: WatchTracker, **app_options: Any) -> Any:
    return running_bridge(Config(transport="streamable-http", port=free_port(), base_url=tracker.url), **app_options)


# Against a tracker whose watch streams the test controls


def test_one_watch_per_key_and_revocation_ends_that_keys_sessions_only(watch_tracker: WatchTracker) -> None:
    async def scenario(url: str) -> None:
        async with (
            mcp_session(url, "key-a") as (first, first_id),
            mcp_session(url, "key-a") as (second, second_id),
            mcp_session(url, "key-b") as (other, _),
        ):
            # A session's id reaches its client once the key's watch is open: no waiting needed.
            assert [c.status for c in watch_tracker.of("key-a")] == [200]
            assert [c.status for c in watch_tracker.of("key-b")] == [200]

            revoked_at = time.monotonic()
            watch_tracker.of("key-a")[0].revoke()
            for session_id in (first_id, second_id):
                await seconds_until_gone(url, "key-a", session_id, revoked_at)

            with pytest.raises(MCPError):
                await first.list_tools()
            with pytest.raises(MCPError):
                await second.list_tools()
            await works(other)
            assert not watch_tracker.of("key-b")[0].ended.is_set()
            assert len(watch_tracker.of("key-a")) == 1, "a revoked key's watch is not reopened"

    with in_process_bridge(watch_tracker) as url:
        anyio.run(scenario, url)


def test_a_dropped_watch_is_reopened_and_its_sessions_stay(watch_tracker: WatchTracker) -> None:
    async def scenario(url: str) -> None:
        async with mcp_session(url, "key-a") as (mcp, session_id):
            watch_tracker.of("key-a")[0].drop()  # a tracker restart, a proxy's idle cut
            await eventually(lambda: len(watch_tracker.of("key-a")) == 2, "the watch reopened")

            await works(mcp)
            assert await session_status(url, "key-a", session_id) == 200

            revoked_at = time.monotonic()
            watch_tracker.of("key-a")[1].revoke()  # the reopened watch still guards the session
            await seconds_until_gone(url, "key-a", session_id, revoked_at)

    with in_process_bridge(watch_tracker) as url:
        anyio.run(scenario, url)


def test_a_401_when_the_watch_reopens_ends_the_sessions(watch_tracker: WatchTracker) -> None:
    """The key was revoked while the stream was down (say, during a tracker restart)."""

    async def scenario(url: str) -> None:
        async with mcp_session(url, "key-a") as (_, session_id):
            watch_tracker.refused.add("key-a")
            dropped_at = time.monotonic()
            watch_tracker.of("key-a")[0].drop()

            await seconds_until_gone(url, "key-a", session_id, dropped_at)
            assert [c.status for c in watch_tracker.of("key-a")] == [200, 401]

    with in_process_bridge(watch_tracker) as url:
        anyio.run(scenario, url)


def test_a_key_refused_from_the_start_keeps_its_session_and_is_not_watched(watch_tracker: WatchTracker) -> None:
    """A wrong key's session stays open, and each tool call answers 401 (the README's promise)."""
    watch_tracker.refused.add("key-wrong")

    async def scenario(url: str) -> None:
        async with mcp_session(url, "key-wrong") as (mcp, session_id):
            # The refusal was handled before the session id was handed out, and ended nothing.
            await works(mcp)
            assert await session_status(url, "key-wrong", session_id) == 200
            assert [c.status for c in watch_tracker.of("key-wrong")] == [401]

    with in_process_bridge(watch_tracker) as url:
        anyio.run(scenario, url)


def test_the_watch_ends_with_the_keys_last_session(watch_tracker: WatchTracker) -> None:
    async def scenario(url: str) -> None:
        async with mcp_session(url, "key-a") as (staying, _):
            async with mcp_session(url, "key-a"):
                pass  # the client deletes its session on the way out
            await works(staying)
            watch = watch_tracker.of("key-a")[0]
            assert not watch.ended.is_set(), "the key still has a session"
        await eventually(watch.ended.is_set, "the watch closed after the last session")
        assert watch.closed_by_bridge

    with in_process_bridge(watch_tracker) as url:
        anyio.run(scenario, url)


def test_a_session_the_sdk_ended_itself_is_noticed_at_the_next_keep_alive(watch_tracker: WatchTracker) -> None:
    """An idle session is ended by the SDK, not by a client's DELETE; the next keep-alive ends its watch."""

    async def scenario(url: str) -> None:
        # Opened by hand: the SDK client's open GET stream would keep the session from idling.
        headers = {**MCP_HEADERS, "Authorization": "Bearer key-a"}
        async with httpx2.AsyncClient(timeout=10) as http:
            assert (await http.post(f"{url}/mcp", json=INITIALIZE, headers=headers)).status_code == 200
        watch = watch_tracker.of("key-a")[0]

        def keep_alive_until_closed() -> bool:
            watch.keep_alive()
            return watch.ended.is_set()

        await eventually(keep_alive_until_closed, "the watch closed at a keep-alive after the session idled out")
        assert watch.closed_by_bridge

    with in_process_bridge(watch_tracker, session_idle_timeout=0.3) as url:
        anyio.run(scenario, url)


def test_a_fault_in_one_watch_ends_that_watch_only(
    watch_tracker: WatchTracker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: SdkSessions, digest: str) -> list[str]:
        raise RuntimeError("a bug in the watch")

    monkeypatch.setattr(SdkSessions, "of_key", broken)

    async def scenario(url: str) -> None:
        async with mcp_session(url, "key-a") as (_, session_id), mcp_session(url, "key-b") as (other, _):
            watch_tracker.of("key-a")[0].revoke()
            await eventually(lambda: "watch of key sha256:" in caplog.text, "the fault was logged")

            # The server, the other key's session and watch, and new sessions are all still there.
            await works(other)
            assert not watch_tracker.of("key-b")[0].ended.is_set()
            async with mcp_session(url, "key-c") as (new, _):
                await works(new)
            assert await session_status(url, "key-a", session_id) == 200  # unwatched, not ended

    with caplog.at_level(logging.ERROR, logger="mcp_tools.revocation"), in_process_bridge(watch_tracker) as url:
        anyio.run(scenario, url)


def test_reopening_backs_off_doubling_up_to_a_cap_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # the longest delay jitter allows
    backoff = Backoff(first=0.5, cap=15.0)

    assert [backoff.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    for _ in range(2000):  # hours of tracker outage: still capped, never an overflow
        assert backoff.next() == 15.0
    backoff.reset()
    assert backoff.next() == 0.5

    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    assert Backoff(first=0.5, cap=15.0).next() == 0.25


# The real bridge process against a real tracker


def revoke(db: Any, name: str, tenant: str) -> None:  # the way `tracker keys revoke` does it
    with db.begin() as conn:
        assert revoke_key(conn, name, tenant=tenant)


@pytest.mark.slow
def test_revoking_a_key_ends_its_sessions_on_the_bridge_within_seconds(
    tracker_url: str, make_key: Callable[..., str], db: Any, tenant: str, tmp_path: Path
) -> None:
    leaving, staying = make_key("write", name="leaving"), make_key("write", name="staying")
    measured: list[float] = []

    async def scenario(url: str) -> None:
        async with (
            mcp_session(url, leaving) as (first, first_id),
            mcp_session(url, leaving) as (second, second_id),
            mcp_session(url, staying) as (other, _),
        ):
            for mcp in (first, second, other):
                ok(await mcp.call_tool("get_next_task", {"project_id": "p"}))

            await anyio.to_thread.run_sync(revoke, db, "leaving", tenant)
            revoked_at = time.monotonic()
            for session_id in (first_id, second_id):
                measured.append(await seconds_until_gone(url, leaving, session_id, revoked_at))

            with pytest.raises(MCPError):
                await first.call_tool("get_next_task", {"project_id": "p"})
            ok(await other.call_tool("get_next_task", {"project_id": "p"}))

    with http_bridge(tracker_url, tmp_path) as url:
        anyio.run(scenario, url)

    assert max(measured) < REVOCATION_BOUND_SECONDS
    log = (tmp_path / "bridge.stderr").read_text()
    assert leaving not in log and staying not in log
    leaving_label = f"key sha256:{key_digest(leaving)[:12]}"
    # One stream for the two sessions of a key; both ended by the one revocation.
    assert len(re.findall(f"{leaving_label} accepted: watching it", log)) == 1, log
    assert f"{leaving_label} was revoked" in log and "ending its 2 MCP session(s)" in log


@pytest.mark.slow
def test_a_tracker_restart_keeps_the_sessions_and_the_reopened_watch_still_ends_them(
    pg_url: str, make_key: Callable[..., str], db: Any, tenant: str, tmp_path: Path
) -> None:
    key = make_key("write", name="through-restart")
    port = free_port()
    tracker_env = {"TRACKER_DATABASE_URL": pg_url}
    tracker = start_tracker(tracker_env, tmp_path / "tracker.log", port=port)
    bridge_log = tmp_path / "bridge.stderr"

    async def scenario(url: str) -> None:
        nonlocal tracker
        async with mcp_session(url, key) as (mcp, session_id):
            ok(await mcp.call_tool("get_next_task", {"project_id": "p"}))

            tracker.proc.kill()  # a crash: the watch's connection drops at once (a graceful stop takes ~5 s)
            tracker.proc.wait()
            await eventually(lambda: " dropped (" in bridge_log.read_text(), "the bridge saw its watch drop")
            await works(mcp)  # the session outlives the tracker's absence
            assert await session_status(url, key, session_id) == 200

            tracker = await anyio.to_thread.run_sync(start_tracker, tracker_env, tmp_path / "tracker.log", port)
            await eventually(lambda: " reconnected: " in bridge_log.read_text(), "the watch reopened", timeout=30)
            ok(await mcp.call_tool("get_next_task", {"project_id": "p"}))

            await anyio.to_thread.run_sync(revoke, db, "through-restart", tenant)
            await seconds_until_gone(url, key, session_id, time.monotonic())

    try:
        with http_bridge(tracker.url, tmp_path) as url:
            anyio.run(scenario, url)
    finally:
        tracker.stop()
