"""Users from an identity provider: bearer JWTs verified against a JWKS the test serves, each user in
a tenant of its own, and every way a token can be wrong refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import client_for
from tests.helpers import ok, problem
from tests.identity_provider import IdentityProvider

ISSUER = "https://id.example.test"
AUDIENCE = "agent-tracker"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider(ISSUER, AUDIENCE)
    yield provider
    provider.server.shutdown()


@pytest.fixture(scope="module")
def tracker(spawn_tracker: Callable[..., Any], idp: IdentityProvider) -> str:
    return spawn_tracker(
        TRACKER_JWT_ISSUER=ISSUER, TRACKER_JWT_AUDIENCE=AUDIENCE, TRACKER_JWT_JWKS_URL=idp.jwks_url
    ).url


def as_user(tracker: str, token: str) -> httpx.Client:
    return client_for(tracker, token)


def test_a_users_token_acts_in_a_tenant_of_its_own(tracker, idp, project):
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    with as_user(tracker, idp.token(alice)) as a, as_user(tracker, idp.token(bob, alg="ES256")) as b:
        me = ok(a.get("/whoami"))
        assert (me["tenant"], me["name"], me["role"]) == (f"user:{alice}", alice, "write")
        made = ok(a.post("/tasks", json={"project": project, "title": "alice's"}), 201)
        assert ok(b.get("/tasks", params={"project": project}))["total"] == 0
        problem(b.get(f"/tasks/{made['id']}"), 404, "TASK_NOT_FOUND")
        assert ok(a.get("/tasks", params={"project": project}))["total"] == 1
        # The same user signing in again (a new token) is the same user.
        with as_user(tracker, idp.token(alice)) as again:
            assert ok(again.get(f"/tasks/{made['id']}"))["title"] == "alice's"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        {"aud": "another-service"},
        {"iss": "https://evil.example.test"},
        {"sub": None},
        {"exp": None},
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "no-sub", "no-exp"],
)
def test_a_token_wrong_in_any_claim_is_refused(tracker, idp, claims):
    with as_user(tracker, idp.token("mallory", **claims)) as c:
        assert "invalid token" in problem(c.get("/whoami"), 401, "UNAUTHORIZED")["detail"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def test_forged_tokens_are_refused(tracker, idp):
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": int(time.time()) + 600}
    public_pem = idp.rsa.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    forged = {
        "alg none": hand_made({"alg": "none", "kid": "rsa-1"}, claims, lambda _: b""),
        # HS256 keyed with the published public key: the classic algorithm confusion.
        "hs256 with the public key": hand_made(
            {"alg": "HS256", "kid": "rsa-1"}, claims, lambda data: hmac.new(public_pem, data, hashlib.sha256).digest()
        ),
        "another key's signature": jwt.encode(
            claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", headers={"kid": "rsa-1"}
        ),
        "unknown key id": idp.token("mallory", kid="no-such-key"),
    }
    for name, token in forged.items():
        with as_user(tracker, token) as c:
            assert problem(c.get("/whoami"), 401, "UNAUTHORIZED"), name


def test_api_keys_keep_working_beside_tokens(tracker, api_key):
    with client_for(tracker, api_key) as c:
        assert ok(c.get("/whoami"))["role"] == "write"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["task", "handoff", "id", "conversation"])),
        min_size=1,
        max_size=8,
    )
)
def test_no_user_ever_sees_another_users_work(tracker, idp, actions):
    run = uuid.uuid4().hex[:8]
    users = {name: f"{name}-{run}" for name in ("u1", "u2", "u3")}
    made = {sub: {"task": 0, "handoff": 0, "id": 0, "conversation": 0} for sub in users.values()}
    clients = {sub: as_user(tracker, idp.token(sub)) for sub in users.values()}
    try:
        for name, kind in actions:
            c, sub = clients[users[name]], users[name]
            if kind == "task":
                ok(c.post("/tasks", json={"project": "shared-name", "title": f"of {sub}"}), 201)
            elif kind == "handoff":
                body = {"project": "shared-name", "task": "t", "direction": "ai_to_cc", "content": f"of {sub}"}
                ok(c.post("/handoffs", json=body), 201)
            elif kind == "id":
                ok(c.post("/ids/next", json={"type": "US", "project_id": "shared-name"}), 201)
            else:
                ok(c.post("/conversations", json={"title": f"of {sub}"}), 201)
            made[sub][kind] += 1
        for sub, c in clients.items():
            tasks = ok(c.get("/tasks", params={"project": "shared-name", "limit": 200}))
            assert tasks["total"] == made[sub]["task"] and all(t["title"] == f"of {sub}" for t in tasks["tasks"])
            handoffs = ok(c.get("/handoffs", params={"project": "shared-name", "limit": 200}))
            assert handoffs["total"] == made[sub]["handoff"]
            log = ok(c.get("/log", params={"limit": 1000}))["entries"]
            assert all(e["actor"] in (sub, None, "tracker") for e in log), log
            assert len([e for e in log if e["event"] == "id.allocated"]) == made[sub]["id"]
            conversations = ok(c.get("/conversations", params={"limit": 200}))
            assert conversations["total"] == made[sub]["conversation"]
            assert all(x["title"] == f"of {sub}" for x in conversations["conversations"])
            counter = ok(c.get("/ids/next", params={"type": "US", "project_id": "shared-name"}))
            assert counter["next_id"] == f"US-{made[sub]['id'] + 1:03d}"
    finally:
        for c in clients.values():
            c.close()


def test_a_stream_ends_when_its_token_expires(tracker, idp):
    from tests.service.test_revocation import OpenStream

    expires = int(time.time()) + 2
    stream = OpenStream(tracker, idp.token("short-lived", exp=expires), "/events")
    ended = stream.wait_end(10)
    assert ended is not None and "event: revoked" in stream.lines
    assert time.time() >= expires


def test_the_http_bridge_passes_a_users_token_through(tracker, idp, project):
    """Through the MCP bridge over HTTP the user's JWT acts as a key would: the user's own tenant."""
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from mcp_tools.config import Config
    from tests.mcp.bridge_support import running_bridge
    from tests.mcp.test_http import free_port

    sub = f"bridge-{uuid.uuid4().hex[:6]}"
    token = idp.token(sub)

    async def add_then_list(url: str) -> Any:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
                await mcp.call_tool("add_task", {"tasks": [{"project_id": project, "title": "via the bridge"}]})
                return (await mcp.call_tool("list_tasks", {"project_id": project})).structured_content

    with running_bridge(Config(transport="streamable-http", port=free_port(), base_url=tracker)) as url:
        listed = anyio.run(add_then_list, url)
    assert [t["title"] for t in listed["tasks"]] == ["via the bridge"]
    with as_user(tracker, token) as c:
        assert ok(c.get("/tasks", params={"project": project}))["total"] == 1
    with as_user(tracker, idp.token(f"other-{sub}")) as other:
        assert ok(other.get("/tasks", params={"project": project}))["total"] == 0
