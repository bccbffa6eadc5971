"""The served OpenAPI document says what the API accepts and answers, errors included, so clients
(and fuzzers) can rely on it. Litestar generates it from the handlers; at startup it is completed
here, in one place, by rules that read the handlers and models, never per route:

- request bodies: each body model's own JSON Schema (web/body_schema.py);
- query parameters a handler takes as alternatives (web/params.alternatives): one object
  parameter, so that "one of them is required" can be said;
- Server-Sent Events: handlers answering ServerSentEvent are text/event-stream;
- every operation's problem+json answers.

Path and query parameters are documented by Litestar from their declarations (web/params.py).
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.response import ServerSentEvent
from litestar.routes import HTTPRoute
from pydantic import BaseModel

from tracker_service.web.body_schema import body_schemas
from tracker_service.web.params import ALTERNATIVES

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
                    "line": {"type": "integer", "description": "POST /import: the line (or record) at fault"},
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
    415: "Request body not sent as application/json",
    422: "Idempotency-Key reused with another request",
    429: "Rate limit reached; see Retry-After",
    500: "Unexpected failure; nothing was changed",
    503: "Database unavailable; retry",
    504: "Waited longer than the request allowed (TIMEOUT)",
}
PUBLIC_PROBLEMS = (400, 404, 500, 503)
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
Operations = dict[tuple[str, str], tuple[dict[str, Any], HTTPRouteHandler]]


def document_api(app: Litestar) -> None:
    """Startup hook: complete the document Litestar generated (it is built once and cached)."""
    document = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    operations = _operations(app, document)
    document_bodies(document, operations)
    document_alternatives(operations)
    document_streams(operations)
    document_problems(document)


def _operations(app: Litestar, document: dict[str, Any]) -> Operations:
    """Each documented operation with the handler that serves it, by (path, method)."""
    found: Operations = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = document.get("paths", {}).get(route.path_format, {})
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if (operation := item.get(method.lower())) is not None:
                    found[(route.path_format, method.lower())] = (operation, handler)
    return found


def document_bodies(document: dict[str, Any], operations: Operations) -> None:
    bodies: dict[tuple[str, str], tuple[type[BaseModel], bool]] = {}
    for key, (_, handler) in operations.items():
        data = handler.parsed_fn_signature.parameters.get("data")
        if data is None:
            continue
        types = [t.annotation for t in data.inner_types] if data.is_optional else [data.annotation]
        models = [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]
        if len(models) == 1:  # anything else keeps Litestar's schema (test_openapi.py says it is not strict)
            bodies[key] = (models[0], data.is_optional)
    refs, definitions = body_schemas(model for model, _ in bodies.values())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    replaced = {ref["$ref"].rsplit("/", 1)[1] for ref in refs.values()}
    clash = (definitions.keys() & schemas.keys()) - replaced
    if clash:
        raise ValueError(f"request body schemas would replace response schemas: {sorted(clash)}")
    schemas.update(definitions)
    for key, (model, optional) in bodies.items():
        operation = operations[key][0]
        # An optional body may be left out, or sent as null.
        schema = {"anyOf": [refs[model], {"type": "null"}]} if optional else refs[model]
        operation["requestBody"] = {"required": not optional, "content": {"application/json": {"schema": schema}}}


def document_alternatives(operations: Operations) -> None:
    for operation, handler in operations.values():
        if (names := handler.opt.get(ALTERNATIVES)) is None:
            continue
        parameters = operation.get("parameters", [])
        chosen = {p["name"]: p for p in parameters if p["in"] == "query" and p["name"] in names}
        if set(chosen) != set(names):
            raise ValueError(f"{handler}: alternatives {names} are not all query parameters")
        grouped = {
            "name": "_or_".join(names),
            "in": "query",
            "style": "form",
            "explode": True,
            "required": True,
            "description": f"Give {' or '.join(names)}; with several, the first of them is used",
            "schema": {
                "type": "object",
                "properties": {name: _non_null(chosen[name]["schema"]) for name in names},
                # Other members would be other query parameters, which are ignored, as everywhere.
                "minProperties": 1,
            },
        }
        operation["parameters"] = [p for p in parameters if p not in chosen.values()] + [grouped]


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value's schema without Litestar's null branch (a query value is never null)."""
    branches = [s for s in schema.get("oneOf", []) if s.get("type") != "null"]
    if len(branches) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k != "oneOf"}, **branches[0]}


def document_streams(operations: Operations) -> None:
    for operation, handler in operations.values():
        if handler.parsed_fn_signature.return_type.annotation is ServerSentEvent:
            operation["responses"]["200"] = {
                "description": "Server-Sent Events, until the client leaves or its key is revoked",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }


def document_problems(document: dict[str, Any]) -> None:
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            public = operation.get("security") == []
            codes = PUBLIC_PROBLEMS if public else PROBLEMS
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses[str(code)] = {"description": PROBLEMS[code], "content": content}
