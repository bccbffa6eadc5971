"""The tracker as an OAuth 2.1 authorization server: registration, consent, PKCE, the token grants,
rotation and revocation, against real PostgreSQL (the tracker in process, one app for the module).

The whole flow with real MCP clients through the bridge is in tests/mcp/test_oauth_flow.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

REDIRECT = "http://localhost:9999/callback"
RESOURCE = "http://127.0.0.1:8765/mcp"


@pytest.fixture(scope="module")
def oauth_app(pg_url: str) -> Iterator[Any]:
    from litestar.testing import TestClient

    from tracker_service.app import create_app
    from tracker_service.settings import Settings

    settings = Settings(
        database_url=pg_url,
        sweep_interval_seconds=3600,
        rate_limit_per_minute=0,
        oauth_resources="https://mcp.example.com/mcp",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def register(app: Any, **metadata: Any) -> dict[str, Any]:
    body = {"redirect_uris": [REDIRECT], "client_name": "Test client", "token_endpoint_auth_method": "none", **metadata}
    response = app.post("/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def start(app: Any, client_id: str, challenge: str, resource: str = RESOURCE, **extra: str) -> Any:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
        "resource": resource,
        **extra,
    }
    return app.get("/authorize", params=params, follow_redirects=False)


def consent_request(app: Any, client_id: str, challenge: str, **extra: str) -> str:
    response = start(app, client_id, challenge, **extra)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/oauth/consent"
    return parse_qs(location.query)["request"][0]


def approve(app: Any, request_id: str, key: str, role: str = "write") -> Any:
    form = {"request": request_id, "key": key, "role": role, "decision": "approve"}
    return app.post("/oauth/consent", data=form, follow_redirects=False)


def code_from(response: Any) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st4te"]
    return query["code"][0]


def exchange(app: Any, client_id: str, code: str, verifier: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }
    return app.post("/token", data=form)


def refresh(app: Any, client_id: str, token: str) -> Any:
    return app.post("/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id})


def tokens_for(app: Any, key: str, role: str = "write") -> tuple[str, dict[str, Any]]:
    client_id = register(app)["client_id"]
    verifier, challenge = pkce()
    code = code_from(approve(app, consent_request(app, client_id, challenge), key, role))
    response = exchange(app, client_id, code, verifier)
    assert response.status_code == 200, response.text
    return client_id, response.json()


def whoami(app: Any, token: str) -> Any:
    return app.get("/whoami", headers={"Authorization": f"Bearer {token}"})


def test_metadata_describes_code_flow_with_pkce_registration_and_revocation(oauth_app: Any) -> None:
    meta = oauth_app.get("/.well-known/oauth-authorization-server").json()
    issuer = meta["issuer"]
    assert not issuer.endswith("/"), "RFC 8414: the issuer exactly as clients know it"
    assert meta["authorization_endpoint"] == f"{issuer}/authorize"
    assert meta["token_endpoint"] == f"{issuer}/token"
    assert meta["registration_endpoint"] == f"{issuer}/register"
    assert meta["revocation_endpoint"] == f"{issuer}/revoke"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    assert meta["client_id_metadata_document_supported"] is True


def test_approved_token_acts_as_the_key_with_the_granted_role(oauth_app: Any, make_key: Callable[..., str]) -> None:
    key = make_key("write")
    key_tenant = oauth_app.get("/whoami", headers={"Authorization": f"Bearer {key}"}).json()["tenant"]
    _, tokens = tokens_for(oauth_app, key, role="read")
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "read" and tokens["expires_in"] == 3600
    me = whoami(oauth_app, tokens["access_token"]).json()
    assert me["tenant"] == key_tenant and me["role"] == "read" and me["resource"] == RESOURCE
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    refused = oauth_app.post("/tasks", json={"project": "p", "title": "t"}, headers=headers)
    assert refused.status_code == 403, "a read grant cannot write, whatever the key could"
    assert oauth_app.get("/tasks", params={"project": "p"}, headers=headers).status_code == 200


def test_a_person_cannot_grant_more_than_their_key(oauth_app: Any, make_key: Callable[..., str]) -> None:
    key = make_key("read")
    client_id = register(oauth_app)["client_id"]
    _, challenge = pkce()
    request_id = consent_request(oauth_app, client_id, challenge)
    page = approve(oauth_app, request_id, key, role="write")
    assert page.status_code == 403 and "grant read or less" in page.text
    assert code_from(approve(oauth_app, request_id, key, role="read")), "the request stays open after a refusal"


def test_pkce_is_required_and_checked(oauth_app: Any, make_key: Callable[..., str]) -> None:
    key = make_key("write")
    client_id = register(oauth_app)["client_id"]
    verifier, challenge = pkce()
    no_pkce = oauth_app.get(
        "/authorize",
        params={"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "resource": RESOURCE},
        follow_redirects=False,
    )
    assert "error=invalid_request" in no_pkce.headers.get("location", "") or no_pkce.status_code == 400
    plain = start(oauth_app, client_id, challenge, code_challenge_method="plain")
    assert "error=invalid_request" in plain.headers.get("location", "") or plain.status_code == 400
    code = code_from(approve(oauth_app, consent_request(oauth_app, client_id, challenge), key))
    wrong = exchange(oauth_app, client_id, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(oauth_app, client_id, code, verifier).status_code == 200


def test_a_code_is_exchanged_once_even_by_racing_requests(oauth_app: Any, make_key: Callable[..., str]) -> None:
    key = make_key("write")
    client_id = register(oauth_app)["client_id"]
    verifier, challenge = pkce()
    code = code_from(approve(oauth_app, consent_request(oauth_app, client_id, challenge), key))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: exchange(oauth_app, client_id, code, verifier).status_code, range(8)))
    assert sorted(answers) == [200] + [400] * 7


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_grant(
    oauth_app: Any, make_key: Callable[..., str]
) -> None:
    client_id, first = tokens_for(oauth_app, make_key("write"))
    second = refresh(oauth_app, client_id, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["access_token"] != first["access_token"]
    assert whoami(oauth_app, rotated["access_token"]).status_code == 200
    replay = refresh(oauth_app, client_id, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # Someone holds a copy of a spent refresh token: everything of that grant ends.
    assert whoami(oauth_app, rotated["access_token"]).status_code == 401
    assert refresh(oauth_app, client_id, rotated["refresh_token"]).status_code == 400


def test_another_client_cannot_use_a_refresh_token(oauth_app: Any, make_key: Callable[..., str]) -> None:
    _, tokens = tokens_for(oauth_app, make_key("write"))
    other = register(oauth_app)["client_id"]
    assert refresh(oauth_app, other, tokens["refresh_token"]).status_code == 400


def test_revocation_ends_the_grant(oauth_app: Any, make_key: Callable[..., str]) -> None:
    client_id, tokens = tokens_for(oauth_app, make_key("write"))
    # The SDK's revocation handler (mcp 2.3.0) requires the client_secret field even for a public client.
    form = {"token": tokens["refresh_token"], "client_id": client_id, "client_secret": ""}
    response = oauth_app.post("/revoke", data=form)
    assert response.status_code == 200
    assert whoami(oauth_app, tokens["access_token"]).status_code == 401
    assert refresh(oauth_app, client_id, tokens["refresh_token"]).status_code == 400


def test_tokens_die_with_their_key(oauth_app: Any, make_key: Callable[..., str], db: Any) -> None:
    key = make_key("write")
    client_id, tokens = tokens_for(oauth_app, key)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE key_hash = encode(sha256(:k), 'hex')"),
            {"k": key.encode()},
        )
    assert whoami(oauth_app, tokens["access_token"]).status_code == 401
    assert refresh(oauth_app, client_id, tokens["refresh_token"]).status_code == 400


def test_expired_access_token_is_refused(oauth_app: Any, make_key: Callable[..., str], db: Any) -> None:
    _, tokens = tokens_for(oauth_app, make_key("write"))
    digest = hashlib.sha256(tokens["access_token"].encode()).hexdigest()
    with db.begin() as conn:
        conn.execute(
            text("UPDATE oauth_tokens SET expires_at = now() - interval '1 s' WHERE token_hash = :h"), {"h": digest}
        )
    response = whoami(oauth_app, tokens["access_token"])
    assert response.status_code == 401 and "refresh it" in response.json()["detail"]


def test_resources_outside_this_machine_need_listing(oauth_app: Any) -> None:
    client_id = register(oauth_app)["client_id"]
    _, challenge = pkce()
    refused = start(oauth_app, client_id, challenge, resource="https://evil.example.net/mcp")
    assert refused.status_code == 302
    query = parse_qs(urlsplit(refused.headers["location"]).query)
    assert query["error"] == ["invalid_target"] and "TRACKER_OAUTH_RESOURCES" in query["error_description"][0]
    missing = start(oauth_app, client_id, challenge, resource="")
    assert "error=invalid_target" in missing.headers["location"]
    listed = start(oauth_app, client_id, challenge, resource="https://mcp.example.com/mcp")
    assert urlsplit(listed.headers["location"]).path == "/oauth/consent"


def test_deny_sends_access_denied_back(oauth_app: Any) -> None:
    client_id = register(oauth_app)["client_id"]
    request_id = consent_request(oauth_app, client_id, pkce()[1])
    response = oauth_app.post(
        "/oauth/consent", data={"request": request_id, "decision": "deny"}, follow_redirects=False
    )
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert response.status_code == 303 and query["error"] == ["access_denied"] and query["state"] == ["st4te"]
    again = approve(oauth_app, request_id, "whatever")
    assert again.status_code == 400 and "expired or was already answered" in again.text


def test_consent_page_shows_the_client_and_allows_its_redirect(oauth_app: Any) -> None:
    client_id = register(oauth_app, client_name="<b>Claude</b>")["client_id"]
    request_id = consent_request(oauth_app, client_id, pkce()[1])
    page = oauth_app.get("/oauth/consent", params={"request": request_id})
    assert page.status_code == 200
    assert "&lt;b&gt;Claude&lt;/b&gt;" in page.text, "the client's name is its owner's text: escaped"
    assert "form-action 'self' http://localhost:9999" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY", "no clickjacking of the approve button"
    unknown = oauth_app.get("/oauth/consent", params={"request": "nope"})
    assert unknown.status_code == 400


def test_consent_with_the_board_session_needs_its_csrf_token(oauth_app: Any, make_key: Callable[..., str]) -> None:
    key = make_key("admin")
    signed = oauth_app.post("/board/signin", data={"key": key}, follow_redirects=False)
    assert signed.status_code == 303
    client_id = register(oauth_app)["client_id"]
    request_id = consent_request(oauth_app, client_id, pkce()[1])
    page = oauth_app.get("/oauth/consent", params={"request": request_id})
    assert "Signed in to the board as" in page.text and 'name="key"' not in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    forged = oauth_app.post("/oauth/consent", data={"request": request_id, "role": "admin", "decision": "approve"})
    assert forged.status_code == 403
    form = {"request": request_id, "role": "admin", "decision": "approve", "csrf_token": csrf}
    # Another site's page posting the same form, while the request is still open, is refused.
    cross = oauth_app.post(
        "/oauth/consent", data=form, headers={"Origin": "https://evil.example.net"}, follow_redirects=False
    )
    assert cross.status_code == 403 and "own page" in cross.text
    assert code_from(oauth_app.post("/oauth/consent", data=form, follow_redirects=False))
    oauth_app.cookies.clear()


def test_confidential_client_must_send_its_secret(oauth_app: Any, make_key: Callable[..., str]) -> None:
    client = register(oauth_app, token_endpoint_auth_method="client_secret_post")
    assert client["client_secret"]
    verifier, challenge = pkce()
    code = code_from(approve(oauth_app, consent_request(oauth_app, client["client_id"], challenge), make_key("write")))
    without = exchange(oauth_app, client["client_id"], code, verifier)
    assert without.status_code == 401
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "code_verifier": verifier,
    }
    assert oauth_app.post("/token", data=form).status_code == 200


def test_registration_refuses_bad_metadata(oauth_app: Any) -> None:
    assert oauth_app.post("/register", json={"redirect_uris": ["not a url"]}).status_code == 400
    assert oauth_app.post("/register", json={"redirect_uris": [REDIRECT], "scope": "root"}).status_code == 400
    assert oauth_app.post("/register", content=b"{", headers={"content-type": "application/json"}).status_code == 400


@pytest.fixture(scope="module")
def document_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A client's metadata document served over http on loopback (allowed for a loopback tracker)."""
    documents: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", documents
    server.shutdown()


def test_client_id_metadata_document(
    oauth_app: Any, make_key: Callable[..., str], document_server: tuple[str, dict[str, Any]]
) -> None:
    base, documents = document_server
    path = f"/client-{uuid.uuid4().hex[:8]}.json"
    client_id = base + path
    documents[path] = {"client_id": client_id, "client_name": "Doc client", "redirect_uris": [REDIRECT]}
    verifier, challenge = pkce()
    request_id = consent_request(oauth_app, client_id, challenge)
    assert "Doc client" in oauth_app.get("/oauth/consent", params={"request": request_id}).text
    code = code_from(approve(oauth_app, request_id, make_key("write")))
    assert exchange(oauth_app, client_id, code, verifier).status_code == 200

    lying = f"/liar-{uuid.uuid4().hex[:8]}.json"
    documents[lying] = {"client_id": "https://someone.else/doc.json", "redirect_uris": [REDIRECT]}
    refused = start(oauth_app, base + lying, challenge)
    assert refused.status_code == 400 and "not found" in refused.text
    elsewhere = f"/wrong-redirect-{uuid.uuid4().hex[:8]}.json"
    documents[elsewhere] = {"client_id": base + elsewhere, "redirect_uris": ["http://localhost:1/other"]}
    assert start(oauth_app, base + elsewhere, challenge).status_code == 400


def test_client_documents_can_be_turned_off(
    app_with: Callable[..., Any], document_server: tuple[str, dict[str, Any]]
) -> None:
    app = app_with(oauth_client_documents=False)
    assert "client_id_metadata_document_supported" not in app.get("/.well-known/oauth-authorization-server").json()
    base, documents = document_server
    path = f"/off-{uuid.uuid4().hex[:8]}.json"
    documents[path] = {"client_id": base + path, "redirect_uris": [REDIRECT]}
    refused = start(app, base + path, pkce()[1])
    assert refused.status_code == 400 and "not found" in refused.text, "registration is the way then"
