"""OAuth end to end: the MCP SDK's own OAuth client provider, the real bridge process over streamable
HTTP, the real tracker as authorization server, and the consent form submitted as a person would.

The client starts with no credential at all: it must find everything from the bridge's 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from sqlalchemy import text

from .bridge_support import error_text, ok
from .test_http import free_port
from .test_http_integration import http_bridge

pytestmark = pytest.mark.slow

CALLBACK = "http://localhost:3118/callback"


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """Opens the authorization URL, signs in with their key on the consent page and approves."""

    def __init__(self, key: str, role: str) -> None:
        self.key, self.role = key, role
        self.visited: list[str] = []
        self.result: AuthorizationCodeResult | None = None

    async def open(self, url: str) -> None:
        self.visited.append(url)
        async with httpx2.AsyncClient(follow_redirects=True, timeout=30) as browser:
            page = await browser.get(url)
            assert page.status_code == 200 and "Approve" in page.text, page.text
            consent = urlsplit(str(page.url))
            form = {
                "request": parse_qs(consent.query)["request"][0],
                "key": self.key,
                "role": self.role,
                "decision": "approve",
            }
            answer = await browser.post(
                f"{consent.scheme}://{consent.netloc}/oauth/consent", data=form, follow_redirects=False
            )
        assert answer.status_code == 303, answer.text
        back = parse_qs(urlsplit(answer.headers["location"]).query)
        self.result = AuthorizationCodeResult(code=back["code"][0], state=back.get("state", [None])[0])

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


def oauth_client(bridge: str, person: Person, storage: MemoryStorage) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="pytest MCP client",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(f"{bridge}/mcp", metadata, storage, person.open, person.callback)


async def with_oauth(bridge: str, auth: OAuthClientProvider, steps: Callable[[Client], Any]) -> Any:
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with Client(streamable_http_client(f"{bridge}/mcp", http_client=http)) as mcp:
            return await steps(mcp)


def test_sdk_oauth_client_connects_through_consent_and_acts_as_the_key(
    tracker_url: str, make_key: Callable[..., str], tmp_path: Path
) -> None:
    key = make_key("write")
    project = f"oauth-{uuid.uuid4().hex[:6]}"
    person, storage = Person(key, "write"), MemoryStorage()
    with http_bridge(tracker_url, tmp_path) as bridge:
        challenge = httpx2.post(f"{bridge}/mcp", json={}, headers={"Accept": "application/json, text/event-stream"})
        assert challenge.status_code == 401
        assert (
            f'resource_metadata="{bridge}/.well-known/oauth-protected-resource/mcp"'
            in (challenge.headers["www-authenticate"])
        )
        prm = httpx2.get(f"{bridge}/.well-known/oauth-protected-resource/mcp").json()
        assert prm["resource"] == f"{bridge}/mcp" and prm["authorization_servers"] == [tracker_url]

        async def work(mcp: Client) -> Any:
            ok(await mcp.call_tool("add_task", {"tasks": [{"project_id": project, "title": "via OAuth"}]}))
            return ok(await mcp.call_tool("list_tasks", {"project_id": project}))

        listed = anyio.run(with_oauth, bridge, oauth_client(bridge, person, storage), work)
        assert [t["title"] for t in listed["tasks"]] == ["via OAuth"]
        assert len(person.visited) == 1 and person.visited[0].startswith(f"{tracker_url}/authorize?")
        assert storage.tokens is not None and storage.tokens.access_token.startswith("trk_oat_")
        # The token acts as the key: its tenant sees the task.
        seen = httpx2.get(
            f"{tracker_url}/tasks", params={"project": project}, headers={"Authorization": f"Bearer {key}"}
        )
        assert [t["title"] for t in seen.json()["tasks"]] == ["via OAuth"]

        # A second connection reuses the stored token: nobody is asked again.
        again = anyio.run(with_oauth, bridge, oauth_client(bridge, person, storage), work)
        assert again["total"] == 2 and len(person.visited) == 1


def test_read_grant_cannot_write_and_a_revoked_key_ends_access(
    tracker_url: str, make_key: Callable[..., str], db: Any, tmp_path: Path
) -> None:
    key = make_key("write")
    person, storage = Person(key, "read"), MemoryStorage()
    with http_bridge(tracker_url, tmp_path) as bridge:

        async def work(mcp: Client) -> tuple[str, bool]:
            denied = error_text(
                await mcp.call_tool("add_task", {"tasks": [{"project_id": "p", "title": "no"}]}), "add_task"
            )
            with db.begin() as conn:
                conn.execute(
                    text("UPDATE api_keys SET revoked_at = now() WHERE key_hash = encode(sha256(:k), 'hex')"),
                    {"k": key.encode()},
                )
            try:
                after = await mcp.call_tool("list_tasks", {"project_id": "p"})
            except Exception:  # the bridge ended the session of the revoked key  # noqa: BLE001
                return denied, True
            return denied, bool(after.is_error)

        denied, refused = anyio.run(with_oauth, bridge, oauth_client(bridge, person, storage), work)
    assert "403" in denied and "read" in denied
    assert refused, "a revoked key's token does nothing more"
    assert storage.tokens is not None
    whoami = httpx2.get(f"{tracker_url}/whoami", headers={"Authorization": f"Bearer {storage.tokens.access_token}"})
    assert whoami.status_code == 401


def test_a_token_for_another_mcp_server_is_refused(
    tracker_url: str, make_key: Callable[..., str], tmp_path: Path
) -> None:
    person, storage = Person(make_key("write"), "write"), MemoryStorage()
    with http_bridge(tracker_url, tmp_path) as first:
        anyio.run(with_oauth, first, oauth_client(first, person, storage), lambda mcp: mcp.list_tools())
    assert storage.tokens is not None
    token = storage.tokens.access_token
    (tmp_path / "second").mkdir()
    with http_bridge(tracker_url, tmp_path / "second", "--public-url", f"http://127.0.0.1:{free_port()}/mcp") as second:
        response = httpx2.post(
            f"{second}/mcp",
            json={},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401, "RFC 8707: a token is bound to the resource it was issued for"
