"""One mapper from every exception to RFC 9457 problem+json with a stable `code`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from tracker_service.errors import TrackerError
from tracker_service.logs import request_id

log = logging.getLogger("tracker.errors")

PROBLEM_JSON = "application/problem+json"

CODE_BY_STATUS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
    429: "RATE_LIMITED",
    500: "SERVER_ERROR",
    503: "DATABASE_UNAVAILABLE",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    standard: dict[str, Any] = {
        "type": f"https://agent-tracker.dev/problems/{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        standard["instance"] = request.url.path
    # Errors raised before the handler are rendered outside RequestLog: its headers go here too.
    headers = {**(headers or {}), "X-Content-Type-Options": "nosniff"}
    if (rid := request_id.get()) is not None:
        headers["X-Request-ID"] = rid
    # Extension members never replace the standard ones.
    return Response({**(extra or {}), **standard}, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def tracker_error(request: Request, exc: TrackerError) -> Response:
    return problem(exc.status, exc.code, exc.title, exc.detail, request, headers=exc.headers, extra=exc.extra)


def validation_error(request: Request, exc: ValidationException) -> Response:
    errors = [
        # A body's errors come without a source from the Pydantic decoder (web.body).
        {"field": _field(e), "message": _message(e), "source": e.get("source") or "body"}
        for e in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(e, dict)
    ]
    if errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    else:
        detail = exc.detail
    return problem(400, "INVALID_REQUEST", "Invalid request", detail, request, extra={"errors": errors})


def _message(error: dict[str, Any]) -> str:
    # Pydantic prefixes the text of our own validators' ValueErrors; the agent needs only the text.
    return str(error.get("message", error)).removeprefix("Value error, ")


def _field(error: dict[str, Any]) -> str:
    key = error.get("key")
    return "" if key in (None, "") else str(key)


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    code = CODE_BY_STATUS.get(status, "SERVER_ERROR" if status >= 500 else "INVALID_REQUEST")
    title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(status, exc.detail)
    detail = exc.detail
    if status == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /schema/openapi.json for the API"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    elif status == 413:
        detail = f"request body is larger than {request.app.state.settings.max_body_bytes} bytes"
    return problem(status, code, title, detail, request, headers=dict(exc.headers or {}))


def database_error(request: Request, exc: DBAPIError) -> Response:
    if isinstance(exc, DataError):
        # A value the schemas let through but PostgreSQL refuses (e.g. a NUL in a query parameter).
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid value"
        return problem(
            400, "INVALID_REQUEST", "Invalid request", f"a value could not be stored or compared: {reason}", request
        )
    # serialization_failure, deadlock_detected: PostgreSQL undid the whole transaction. (Not all of
    # class 40: after 40003 the outcome is unknown, and 40002 would fail the same way again.)
    if getattr(exc.orig, "sqlstate", None) in ("40001", "40P01") and not exc.connection_invalidated:
        reason = str(exc.orig).splitlines()[0]
        log.warning("write conflict, rolled back: %s", reason)
        return problem(
            503,
            "WRITE_CONFLICT",
            "Concurrent write conflict",
            f"the request collided with a concurrent write ({reason}); nothing was changed, retry it",
            request,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        log.warning("database unavailable: %s", exc.orig)
        return problem(
            503,
            "DATABASE_UNAVAILABLE",
            "Database unavailable",
            "the database is unreachable; nothing was changed, retry shortly",
            request,
            headers={"Retry-After": "1"},
        )
    return unexpected_error(request, exc)


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if request.scope.get("state", {}).get("autocommit"):
        # Its one statement committed by itself: whatever failed after it cannot undo it.
        outcome = "the change may have been stored; read it back before retrying"
    else:
        outcome = "nothing was changed"
    return problem(
        500,
        "SERVER_ERROR",
        "Internal server error",
        f"the tracker failed unexpectedly; {outcome}. The error is in the tracker's log.",
        request,
    )


def pydantic_error(request: Request, exc: Any) -> Response:
    """Query and path values validated with the body schemas (e.g. an ID type)."""
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "source": "query"} for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    return problem(400, "INVALID_REQUEST", "Invalid request", detail, request, extra={"errors": errors})


EXCEPTION_HANDLERS: Any = {  # Litestar's ExceptionHandlersMap, whose value type mypy cannot match
    TrackerError: tracker_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    DBAPIError: database_error,
    PydanticValidationError: pydantic_error,
    Exception: unexpected_error,
}
