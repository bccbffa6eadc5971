"""The streamable HTTP transport, in process: the real ASGI app under uvicorn on a local port, real
MCP clients (the SDK's, over HTTP), and the tracker stubbed with ``responses``.

What matters here is who the bridge speaks for: each client's key reaches the tracker with that
client's calls and no other, a request without a key never reaches MCP, and Host/Origin checks
hold for every bind address.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
import responses
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from requests import PreparedRequest

from mcp_tools.config import Config
from mcp_tools.errors import Unauthorized
from mcp_tools.http_server import ForwardedKey, request_key, transport_security

from .bridge_support import URL, error_text, problem, running_bridge, task_json

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bridge_url(http: responses.RequestsMock) -> Iterator[str]:
    """A streamable HTTP bridge on a local port, for as long as the test runs (``http`` stubs the tracker)."""
    with running_bridge(Config(transport="streamable-http", port=free_port())) as url:
        yield url


async def call_as(url: str, key: str, name: str, arguments: dict[str, Any]) -> CallToolResult:
    """One tools/call by an MCP client whose every request carries ``key``."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
            return await mcp.call_tool(name, arguments)


def echo_key(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
    """A tracker that answers with a task titled by the key it was sent, a little late."""
    time.sleep(0.005)  # long enough for concurrent calls to overlap in the bridge
    key = str(request.headers["Authorization"]).removeprefix("Bearer ")
    return 200, {"Content-Type": "application/json"}, json.dumps({"task": task_json(title=key)})


def initialize(url: str, key: str | None, **headers: str) -> httpx2.Response:
    auth = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx2.post(f"{url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **auth, **headers}, timeout=10)


# Keys


def test_each_clients_key_reaches_the_tracker_with_its_own_calls_only(
    bridge_url: str, http: responses.RequestsMock
) -> None:
    http.add_callback(responses.GET, f"{URL}/tasks/next", callback=echo_key)
    keys = [f"key-{n}" for n in range(4)]
    seen: dict[str, list[str]] = {key: [] for key in keys}

    async def client(key: str) -> None:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as transport:
            async with Client(streamable_http_client(f"{bridge_url}/mcp", http_client=transport)) as mcp:
                for _ in range(8):
                    result = await mcp.call_tool("get_next_task", {"project_id": "p"})
                    assert not result.is_error, result.content[0].text
                    seen[key].append(result.structured_content["task"]["title"])

    async def race() -> None:
        async with anyio.create_task_group() as group:
            for key in keys:
                group.start_soon(client, key)

    anyio.run(race)

    assert seen == {key: [key] * 8 for key in keys}
    assert len(http.calls) == 32


def test_a_key_the_tracker_refuses_is_a_tool_error(bridge_url: str, http: responses.RequestsMock) -> None:
    http.get(f"{URL}/tasks/next", **problem(401, "UNAUTHORIZED", "Unauthorized", "unknown API key"))

    result = anyio.run(call_as, bridge_url, "trk_revoked", "get_next_task", {"project_id": "p"})

    assert error_text(result, "get_next_task") == "Task Tracking API error: 401 - Unauthorized"
    assert http.calls[0].request.headers["Authorization"] == "Bearer trk_revoked"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwYXNz", "trk_key-without-scheme"])
def test_no_key_is_a_401_before_mcp(bridge_url: str, http: responses.RequestsMock, authorization: str | None) -> None:
    headers = {**MCP_HEADERS, **({"Authorization": authorization} if authorization is not None else {})}

    resp = httpx2.post(f"{bridge_url}/mcp", json=INITIALIZE, headers=headers, timeout=10)

    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert resp.json()["error_description"].startswith("Send your tracker API key as 'Authorization: Bearer <key>'")
    assert "mcp-session-id" not in resp.headers
    assert len(http.calls) == 0


def test_a_session_answers_only_the_key_that_opened_it(bridge_url: str) -> None:
    opened = initialize(bridge_url, "key-a")
    assert opened.status_code == 200
    session = {**MCP_HEADERS, "Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    stolen = httpx2.post(f"{bridge_url}/mcp", json=listing, headers={**session, "Authorization": "Bearer key-b"})
    own = httpx2.post(f"{bridge_url}/mcp", json=listing, headers={**session, "Authorization": "Bearer key-a"})

    assert stolen.status_code == 404
    assert own.status_code == 200 and "get_next_task" in own.text


def test_the_health_check_needs_no_key(bridge_url: str, http: responses.RequestsMock) -> None:
    resp = httpx2.get(f"{bridge_url}/health", timeout=10)

    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})
    assert len(http.calls) == 0


def test_outside_an_http_request_there_is_no_key_to_fall_back_on() -> None:
    with pytest.raises(Unauthorized, match="no API key on this request"):
        request_key()


# DNS-rebinding protection


def test_a_foreign_host_or_origin_is_refused(bridge_url: str) -> None:
    port = bridge_url.rpartition(":")[2]

    assert initialize(bridge_url, "key-a", Host="evil.example").status_code == 421
    assert initialize(bridge_url, "key-a", Host=f"evil.example:{port}").status_code == 421
    assert initialize(bridge_url, "key-a", Origin="http://evil.example").status_code == 403
    assert initialize(bridge_url, "key-a", Host=f"localhost:{port}").status_code == 200
    assert initialize(bridge_url, "key-a", Origin=f"http://127.0.0.1:{port}").status_code == 200


def test_loopback_names_are_always_allowed() -> None:
    security = transport_security(Config(transport="streamable-http"))

    assert security.enable_dns_rebinding_protection is True
    assert security.allowed_hosts == ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
    assert "http://localhost:*" in security.allowed_origins and "https://[::1]" in security.allowed_origins


def test_on_every_address_only_the_named_hosts_join_them() -> None:
    config = Config(transport="streamable-http", host="0.0.0.0", allowed_hosts=("tracker.example", "10.0.0.5:8766"))

    security = transport_security(config)

    assert security.enable_dns_rebinding_protection is True
    assert security.allowed_hosts[6:] == ["tracker.example", "tracker.example:*", "10.0.0.5:8766"]
    assert "0.0.0.0" not in " ".join(security.allowed_hosts)
    assert {"https://tracker.example", "http://tracker.example:*", "http://10.0.0.5:8766"} <= set(
        security.allowed_origins
    )


def test_a_specific_address_allows_itself() -> None:
    assert transport_security(Config(transport="streamable-http", host="10.1.2.3")).allowed_hosts[6:] == [
        "10.1.2.3",
        "10.1.2.3:*",
    ]
    assert transport_security(Config(transport="streamable-http", host="fd00::5")).allowed_hosts[6:] == [
        "[fd00::5]",
        "[fd00::5]:*",
    ]


def test_the_verifier_accepts_any_key_and_identifies_it_by_hash_only() -> None:
    verifier = ForwardedKey()

    assert anyio.run(verifier.verify_token, "   ") is None
    token = anyio.run(verifier.verify_token, " trk_abc ")
    assert token is not None and token.token == "trk_abc"
    assert token.client_id == hashlib.sha256(b"trk_abc").hexdigest()
