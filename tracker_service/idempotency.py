"""Idempotency-Key: a repeated write gets the first answer instead of doing the work again.

The key is recorded in the request's own transaction, with the answer stored before it commits:
the work and its record commit together or not at all, and a concurrent repeat blocks on the
record's primary key until the first finishes, then replays its answer. Used by the request
middleware (web.middleware) and by routes that manage their own transactions (delegation).

A route whose write is one statement can record the key in that statement instead
(``KeyedRequest``, ``key_record``; opts AUTOCOMMIT_WITH_KEY_RECORD and TRANSACTION_WITH_KEY_RECORD):
one round trip instead of five (BEGIN, key, work, answer, COMMIT), or three when the route needs
its transaction for more (BEGIN, work, COMMIT). Its record holds what the answer is made from, and a repeat,
whose statement fails on the taken key and so does nothing, makes the same answer from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from litestar.types import Message, Scope, Send
from sqlalchemy import (
    ColumnElement,
    Insert,
    LargeBinary,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import idempotency_records
from tracker_service.domain.keys.service import Principal
from tracker_service.errors import Conflict, IdempotencyKeyReused, InvalidRequest

# Marks an answer given again from a key's record rather than by doing the work.
REPLAYED = {"idempotent-replayed": "true"}


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


def check_key(key: str) -> None:
    if not key or len(key) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters")


async def claim_idempotency_key(
    conn: AsyncConnection, principal: Principal, key: str, request_hash: str
) -> CapturedResponse | None:
    """Record the key in this transaction; return the stored response if it was used before."""
    check_key(key)
    if await _CLAIM_KEY.first(conn, {"b_tenant": principal.tenant, "b_key": key, "b_hash": request_hash}):
        return None
    return _stored_response(await _stored_record(conn, principal.tenant, key, request_hash))


async def _stored_record(conn: AsyncConnection, tenant: str, key: str, request_hash: str) -> dict[str, Any]:
    """The key's record, once it is known to be taken; refused if it was taken by another request."""
    row = await _STORED.first(conn, {"b_tenant": tenant, "b_key": key})
    if row is None:  # swept away (records live 24 h) between the two statements
        raise Conflict(f"Idempotency-Key {key!r} expired just now; retry the request with a new key")
    if row["request_hash"] != request_hash:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used with a different request; use a new key for a new request"
        )
    return row


@dataclass(frozen=True)
class KeyedRequest:
    """A request whose route records its Idempotency-Key in its own statement (``key_record``)."""

    key: str
    request_hash: str

    def params(self, tenant: str) -> dict[str, Any]:
        # k_: the statements that record a key use b_key for their own (a task's key).
        return {"b_tenant": tenant, "k_key": self.key, "k_hash": self.request_hash}

    async def recorded(self, conn: AsyncConnection, tenant: str) -> dict[str, Any]:
        """What the first request's answer was made from (``key_record``), for its repeat to answer
        the same."""
        record = await _stored_record(conn, tenant, self.key, self.request_hash)
        answer: dict[str, Any] = json.loads(bytes(record["body"]))
        return answer


def key_record(answer: ColumnElement[Any], when: ColumnElement[bool] | None = None) -> Insert:
    """The key's record, written by the statement that does the work (as one of its CTEs).

    ``answer`` (jsonb) is what the answer is made from; ``when``, if given, says whether the work
    succeeded (a refused request records nothing, so its repeat is judged again). A taken key fails
    the whole statement with a unique violation (``key_taken``), so a repeat does nothing again; a
    concurrent repeat waits for the first statement's commit before it fails.
    """
    record = select(  # type: ignore[var-annotated]  # SQLAlchemy infers Never for bare binds
        bindparam("b_tenant"),
        bindparam("k_key"),
        bindparam("k_hash"),
        literal(200),
        literal("application/json"),
        type_coerce(func.convert_to(cast(answer, Text), literal("UTF8")), LargeBinary),
    ).where(true() if when is None else when)
    return insert(idempotency_records).from_select(
        ["tenant", "key", "request_hash", "status_code", "content_type", "body"], record
    )


def key_taken(exc: DBAPIError) -> bool:
    """Whether a statement failed because its Idempotency-Key's record exists (``key_record``)."""
    orig = exc.orig
    return isinstance(orig, psycopg.errors.UniqueViolation) and orig.diag.table_name == "idempotency_records"


def _stored_response(row: dict[str, Any]) -> CapturedResponse:
    body = bytes(row["body"] or b"")
    headers = [
        (b"content-type", (row["content_type"] or "application/json").encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in REPLAYED.items()),
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
