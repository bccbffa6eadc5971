"""Document the problem+json answers in the generated OpenAPI, so clients (and fuzzers) can
check every response against the schema, errors included."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable, `detail` says what would work instead.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "source": {"type": ["string", "null"]},
                },
            },
        },
    },
    "additionalProperties": True,
}

# Any route can answer these (authenticated ones all of them; public ones the subset below).
PROBLEMS = {
    400: "Invalid request (code INVALID_REQUEST, INVALID_TRANSITION)",
    401: "Missing, invalid or revoked API key",
    403: "The key's role does not allow this",
    404: "Not found (TASK_NOT_FOUND, HANDOFF_NOT_FOUND, RESERVATION_NOT_FOUND, NOT_FOUND)",
    409: "Conflict (AMBIGUOUS_KEY, DUPLICATE_KEY, DEPENDENCY_CYCLE, CONFLICT)",
    413: "Request body over the limit",
    422: "Idempotency-Key reused with another request",
    429: "Rate limit reached; see Retry-After",
    500: "Unexpected failure; nothing was changed",
    503: "Database unavailable; retry",
    504: "Waited longer than the request allowed (TIMEOUT)",
}
PUBLIC_PROBLEMS = (400, 404, 500, 503)
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def document_problems(app: Litestar) -> None:
    schema = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            public = operation.get("security") == []
            codes = PUBLIC_PROBLEMS if public else PROBLEMS
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses[str(code)] = {"description": PROBLEMS[code], "content": content}
