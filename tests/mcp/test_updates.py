"""Resource updates over stdio's bridge: a client listening to a task or a handoff hears its changes,
fed by the tracker's event stream (a real tracker; the MCP client in memory)."""

from __future__ import annotations

import json
import uuid
import warnings
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from mcp_tools.client import TrackerClient
from mcp_tools.config import Config
from mcp_tools.server import build_server
from mcp_tools.updates import ResourceSubscriptions, TrackerUpdates
from tests.conftest import client_for
from tests.helpers import ok

from .test_http_integration import http_bridge


def test_a_listener_hears_its_task_and_handoff_change_and_nothing_else(tracker_url, api_key, project):
    with client_for(tracker_url, api_key) as api:
        task = ok(api.post("/tasks", json={"project": project, "title": "watched"}), 201)
        other = ok(api.post("/tasks", json={"project": project, "title": "not watched"}), 201)
        handoff = ok(
            api.post("/handoffs", json={"project": project, "task": "t", "direction": "ai_to_cc", "content": "x"}), 201
        )
    config = Config(api_key=api_key, base_url=tracker_url)
    watched = [f"tracker://tasks/{task['key']}", f"tracker://handoffs/{handoff['id']}"]

    async def listen() -> list[str]:
        heard: list[str] = []
        async with Client(build_server(TrackerClient(config), updates=TrackerUpdates(config))) as mcp:
            async with mcp.listen(resource_subscriptions=watched) as subscription:
                await anyio.sleep(0.5)  # the bus starts following /events on the first listener

                def changes() -> None:
                    with httpx.Client(base_url=tracker_url, headers={"Authorization": f"Bearer {api_key}"}) as api:
                        ok(api.patch(f"/tasks/{other['id']}", json={"title": "still not watched"}))
                        ok(api.patch(f"/tasks/{task['id']}", json={"title": "changed"}))
                        ok(api.patch(f"/handoffs/{handoff['id']}", json={"status": "read"}))

                await anyio.to_thread.run_sync(changes)
                with anyio.fail_after(10):
                    async for event in subscription:
                        heard.append(str(event.uri))
                        if len(heard) == 2:
                            break
        return heard

    assert anyio.run(listen) == watched


def test_a_conversation_reads_as_a_resource(tracker_url, api_key):
    with client_for(tracker_url, api_key) as api:
        conv = ok(api.post("/conversations", json={"title": "chat"}), 201)
        ok(api.post(f"/conversations/{conv['id']}/messages", json={"role": "user", "content": "hello"}), 201)
    config = Config(api_key=api_key, base_url=tracker_url)

    async def read() -> dict[str, object]:
        async with Client(build_server(TrackerClient(config))) as mcp:
            result = await mcp.read_resource(f"tracker://conversations/{conv['id']}")
        return json.loads(result.contents[0].text)

    got = anyio.run(read)
    assert got["title"] == "chat" and [m["content"] for m in got["messages"]] == ["hello"]


def _updated_uris(heard: list[str]) -> Any:
    """A message handler that notes the URI of every notifications/resources/updated."""

    async def handler(message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, types.ResourceUpdatedNotification):
            heard.append(str(root.params.uri))

    return handler


def test_resources_subscribe_of_the_older_protocols(tracker_url, api_key, project):
    """Clients of protocols up to 2025-11-25 subscribe with resources/subscribe and hear the same."""
    with client_for(tracker_url, api_key) as api:
        task = ok(api.post("/tasks", json={"project": project, "title": "watched"}), 201)
    config = Config(api_key=api_key, base_url=tracker_url)
    uri = f"tracker://tasks/{task['key']}"

    async def subscribe() -> tuple[list[str], bool]:
        heard: list[str] = []
        updates = TrackerUpdates(config)
        server = build_server(
            TrackerClient(config), updates=updates, subscriptions=ResourceSubscriptions(lambda: updates)
        )
        async with Client(server, mode="legacy", message_handler=_updated_uris(heard)) as mcp:
            capable = bool(mcp.session.server_capabilities.resources.subscribe)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                with pytest.raises(MCPError, match="never changes here"):
                    await mcp.subscribe_resource("test://watched-resource")
                await mcp.subscribe_resource(uri)
            await anyio.sleep(0.5)

            def change() -> None:
                with client_for(tracker_url, api_key) as api:
                    ok(api.patch(f"/tasks/{task['id']}", json={"title": "changed"}))

            await anyio.to_thread.run_sync(change)
            with anyio.fail_after(10):
                while not heard:
                    await anyio.sleep(0.05)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await mcp.unsubscribe_resource(uri)
            await anyio.to_thread.run_sync(change)
            await anyio.sleep(1)
        return heard, capable

    heard, capable = anyio.run(subscribe)
    assert capable, "the server says it takes resources/subscribe"
    assert heard == [uri], "one change while subscribed, none after unsubscribing"


def test_over_http_each_session_hears_only_its_own_tenant(tracker_url, make_key, tmp_path, project):
    """Two tenants through one HTTP bridge watch the same URI, each with resources/subscribe (older
    protocols) and with subscriptions/listen (2026-07-28); a change in one tenant reaches only its own."""
    keys = {name: make_key("write", tenant_name=f"t-{uuid.uuid4().hex[:12]}") for name in ("a", "b")}
    tasks = {}
    for name, key in keys.items():
        with client_for(tracker_url, key) as api:
            tasks[name] = ok(api.post("/tasks", json={"project": project, "title": name, "task_id": "W-1"}), 201)
    uri = "tracker://tasks/W-1"

    async def both(url: str) -> dict[str, list[str]]:
        heard: dict[str, list[str]] = {f"{name}-{way}": [] for name in keys for way in ("subscribe", "listen")}
        async with AsyncExitStack() as stack:
            subscriptions = {}
            for name, key in keys.items():

                async def http(key: str = key) -> httpx2.AsyncClient:
                    headers = {"Authorization": f"Bearer {key}"}
                    return await stack.enter_async_context(httpx2.AsyncClient(headers=headers))

                legacy = await stack.enter_async_context(
                    Client(
                        streamable_http_client(f"{url}/mcp", http_client=await http()),
                        mode="legacy",
                        message_handler=_updated_uris(heard[f"{name}-subscribe"]),
                    )
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await legacy.subscribe_resource(uri)
                modern = await stack.enter_async_context(
                    Client(streamable_http_client(f"{url}/mcp", http_client=await http()))
                )
                subscriptions[name] = await stack.enter_async_context(modern.listen(resource_subscriptions=[uri]))

            async def collect(subscription: Any, into: list[str]) -> None:
                async for event in subscription:
                    into.append(str(event.uri))

            # Entered after the clients, so cancelling it ends the collectors and not the sessions.
            listeners = await stack.enter_async_context(anyio.create_task_group())
            for name, subscription in subscriptions.items():
                listeners.start_soon(collect, subscription, heard[f"{name}-listen"])
            await anyio.sleep(0.5)  # each key's bus starts following /events on its first listener

            def change() -> None:
                with client_for(tracker_url, keys["a"]) as api:
                    ok(api.patch(f"/tasks/{tasks['a']['id']}", json={"title": "a changed"}))

            await anyio.to_thread.run_sync(change)
            with anyio.fail_after(10):
                while not (heard["a-subscribe"] and heard["a-listen"]):
                    await anyio.sleep(0.05)
            await anyio.sleep(1)  # room for a wrong delivery to the other tenant
            listeners.cancel_scope.cancel()
        return heard

    with http_bridge(tracker_url, tmp_path) as url:
        heard = anyio.run(both, url)
    assert heard == {"a-subscribe": [uri], "a-listen": [uri], "b-subscribe": [], "b-listen": []}
