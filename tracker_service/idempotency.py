"""Idempotency-Key: a repeated write gets the first answer instead of doing the work again.

The key is recorded in the request's own transaction, with the answer stored before it commits:
the work and its record commit together or not at all, and a concurrent repeat blocks on the
record's primary key until the first finishes, then replays its answer. Used by the request
middleware (web.middleware) and by routes that manage their own transactions (delegation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from litestar.types import Message, Scope, Send
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import idempotency_records
from tracker_service.domain.keys.service import Principal
from tracker_service.errors import Conflict, IdempotencyKeyReused, InvalidRequest


@dataclass
class CapturedResponse:
    messages: list[Message] = field(default_factory=list)
    status: int = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        self.messages.append(message)

    async def replay(self, send: Send) -> None:
        for message in self.messages:
            await send(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")

    def content_type(self) -> str:
        for m in self.messages:
            if m["type"] == "http.response.start":
                for k, v in m.get("headers", []):
                    if k.lower() == b"content-type":
                        return v.decode("latin-1")
        return "application/json"


def request_hash(scope: Scope, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (str(scope.get("method", "")).encode(), scope["path"].encode(), scope.get("query_string", b""), body):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()


# Prepared once: every write with an Idempotency-Key runs them, in the request's transaction.
_THIS_KEY = (
    idempotency_records.c.tenant == bindparam("b_tenant"),
    idempotency_records.c.key == bindparam("b_key"),
)
_CLAIM_KEY = HotStatement(
    pg_insert(idempotency_records)
    .values(tenant=bindparam("b_tenant"), key=bindparam("b_key"), request_hash=bindparam("b_hash"))
    .on_conflict_do_nothing()
    .returning(idempotency_records.c.key)
)
_STORED = HotStatement(select(idempotency_records).where(*_THIS_KEY))
_STORE = HotStatement(
    update(idempotency_records)
    .where(*_THIS_KEY)
    .values(status_code=bindparam("b_status"), content_type=bindparam("b_type"), body=bindparam("b_body"))
)


async def claim_idempotency_key(
    conn: AsyncConnection, principal: Principal, key: str, request_hash: str
) -> CapturedResponse | None:
    """Record the key in this transaction; return the stored response if it was used before."""
    if not key or len(key) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters")
    if await _CLAIM_KEY.first(conn, {"b_tenant": principal.tenant, "b_key": key, "b_hash": request_hash}):
        return None
    row = await _STORED.first(conn, {"b_tenant": principal.tenant, "b_key": key})
    if row is None:  # swept away (records live 24 h) between the two statements
        raise Conflict(f"Idempotency-Key {key!r} expired just now; retry the request with a new key")
    if row["request_hash"] != request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used with a different request; use a new key for a new request"
        )
    return _stored_response(row)


def _stored_response(row: dict[str, Any]) -> CapturedResponse:
    body = bytes(row["body"] or b"")
    headers = [
        (b"content-type", (row["content_type"] or "application/json").encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    return CapturedResponse(
        messages=[
            {"type": "http.response.start", "status": row["status_code"], "headers": headers},
            {"type": "http.response.body", "body": body, "more_body": False},
        ],
        status=row["status_code"],
    )


async def store_response(conn: AsyncConnection, principal: Principal, key: str, captured: CapturedResponse) -> None:
    await store_body(conn, principal, key, captured.status, captured.content_type(), captured.body())


async def store_body(
    conn: AsyncConnection, principal: Principal, key: str, status: int, content_type: str, body: bytes
) -> None:
    params = {"b_tenant": principal.tenant, "b_key": key, "b_status": status, "b_type": content_type, "b_body": body}
    await _STORE.run(conn, params)
