"""Resource updates over stdio's bridge: a client listening to a task or a handoff hears its changes,
fed by the tracker's event stream (a real tracker; the MCP client in memory)."""

from __future__ import annotations

import json

import anyio
import httpx
from mcp import Client

from mcp_tools.client import TrackerClient
from mcp_tools.config import Config
from mcp_tools.server import build_server
from mcp_tools.updates import TrackerUpdates
from tests.conftest import client_for
from tests.helpers import ok


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
