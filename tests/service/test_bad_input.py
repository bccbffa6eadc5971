"""Bad input is refused before anything is written, with a 4xx problem naming the field.

Stored JSON values (task inputs, outputs, results, handoff metadata, delegation options) follow one
rule: at most 32 levels deep, 512 KiB encoded, finite numbers. Anything the rule admits can always
be served back, so no response can fail after its write committed.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st
from litestar.serialization import encode_json, get_serializer

from tests.helpers import ok, problem
from tracker_service.domain.common import MAX_JSON_BYTES, MAX_JSON_DEPTH
from tracker_service.domain.tasks.schemas import TaskOut

JSON = {"Content-Type": "application/json"}


def nested(depth: int, leaf: Any = "x") -> Any:
    """Lists and objects alternating, `depth` containers deep."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def field_of(body: dict[str, Any]) -> str:
    return body["errors"][0]["field"]


def total(api, project: str) -> int:  # type: ignore[no-untyped-def]
    return ok(api.get("/tasks", params={"project": project}))["total"]


def test_every_stored_json_value_has_one_depth_and_size_rule(api, project):
    too_deep, deepest = nested(MAX_JSON_DEPTH + 1), nested(MAX_JSON_DEPTH)
    task = ok(api.post("/tasks", json={"project": project, "title": "target"}), 201)
    handoff = {"project": project, "task": "t", "direction": "cc_to_ai", "content": "# hi"}
    # Every path that stores JSON without echoing it back, and those that do.
    attempts = {
        "inputs": lambda v: api.post("/tasks", json={"project": project, "title": "a", "inputs": v}),
        "outputs": lambda v: api.post("/tasks", json={"project": project, "title": "a", "outputs": v}),
        "result": lambda v: api.post("/tasks", json={"project": project, "title": "a", "result": v}),
        "tasks.1.inputs": lambda v: api.post(
            "/tasks/batch",
            json={
                "tasks": [
                    {"project": project, "title": "first", "key": "FIRST"},
                    {"project": project, "title": "second", "depends_on": ["FIRST"], "inputs": v},
                ]
            },
        ),
        "inputs ": lambda v: api.patch(f"/tasks/{task['id']}", json={"inputs": v}),
        "result ": lambda v: api.put(f"/tasks/{task['id']}/status", json={"status": "in_progress", "result": v}),
        "metadata": lambda v: api.post("/handoffs", json={**handoff, "metadata": {"m": v}}),
        "options": lambda v: api.post("/task/delegate", json={"type": "code", "prompt": "p", "options": {"o": v}}),
    }
    huge = "x" * (MAX_JSON_BYTES + 1)
    for field, attempt in attempts.items():
        body = problem(attempt(too_deep), 400, "INVALID_REQUEST")
        assert field_of(body) == field.strip(), body
        assert f"at most {MAX_JSON_DEPTH} levels" in body["detail"]
        body = problem(attempt([huge]), 400, "INVALID_REQUEST")
        assert field_of(body) == field.strip() and "bytes" in body["detail"], body
    assert total(api, project) == 1, "a refused request wrote nothing"
    assert not ok(api.get("/handoffs", params={"project": project}))["handoffs"]
    assert ok(api.get(f"/tasks/{task['id']}"))["status"] == "pending"

    # The deepest value allowed is stored and served by every route that shows it, claim included.
    deep = ok(api.post("/tasks", json={"project": project, "title": "deep", "inputs": deepest, "result": deepest}), 201)
    assert ok(api.get(f"/tasks/{deep['id']}"))["inputs"] == deepest
    claims = [ok(api.post("/tasks/next", json={"project": project, "agent": "a1"}))["task"] for _ in range(2)]
    assert {c["id"] for c in claims} == {task["id"], deep["id"]}
    done = ok(api.put(f"/tasks/{deep['id']}/status", json={"status": "completed", "result": deepest}))
    assert done["updated_task"]["result"] == deepest


def test_bodies_too_deep_to_parse_and_numbers_json_cannot_hold(api, project):
    for depth in (1000, 100_000):
        raw = '{{"project": "{}", "title": "x", "inputs": {}{}}}'.format(project, "[" * depth, "]" * depth)
        assert "too deeply" in problem(api.post("/tasks", content=raw, headers=JSON), 400, "INVALID_REQUEST")["detail"]
    raw = f'{{"project": "{project}", "title": "x", "inputs": {{"n": 1e400}}}}'
    body = problem(api.post("/tasks", content=raw, headers=JSON), 400, "INVALID_REQUEST")
    assert field_of(body) == "inputs" and "finite" in body["detail"]
    for constant in ("NaN", "Infinity", "-Infinity"):
        raw = f'{{"project": "{project}", "title": "x", "inputs": {constant}}}'
        problem(api.post("/tasks", content=raw, headers=JSON), 400, "INVALID_REQUEST")
    raw = f'{{"project": "{project}", "title": "lone \\ud800 surrogate"}}'
    assert field_of(problem(api.post("/tasks", content=raw, headers=JSON), 400, "INVALID_REQUEST")) == "title"
    raw = f'{{"project": "{project}", "title": "x", "inputs": {{"a": ["ok", "\\u0000"]}}}}'
    assert field_of(problem(api.post("/tasks", content=raw, headers=JSON), 400, "INVALID_REQUEST")) == "inputs.a.1"
    assert total(api, project) == 0


def test_bodies_must_be_json_without_repeated_keys(api, project):
    raw = json.dumps({"project": project, "title": "x"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None, "application/json; charset=latin-1"):
        headers = {"Content-Type": content_type} if content_type else {}
        resp = api.post("/tasks", content=raw, headers=headers)
        assert "application/json" in problem(resp, 415, "UNSUPPORTED_MEDIA_TYPE")["detail"]
    for content_type in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
        ok(api.post("/tasks", content=raw, headers={"Content-Type": content_type}), 201)
    raw = f'{{"project": "{project}", "title": "first", "title": "second"}}'
    assert field_of(problem(api.post("/tasks", content=raw, headers=JSON), 400, "INVALID_REQUEST")) == "title"
    problem(api.post("/tasks", content=b'{"project": "\xff"}', headers=JSON), 400, "INVALID_REQUEST")
    assert total(api, project) == 3


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/ids/reserve", {"type": "US", "project_id": "P", "count": "5"}, "count"),
        ("/ids/reserve", {"type": "US", "project_id": "P", "count": True}, "count"),
        ("/ids/reserve", {"type": "US", "project_id": "P", "count": 5.5}, "count"),
        ("/tasks/next", {"project": "P", "agent": "a", "lease_seconds": "60"}, "lease_seconds"),
        ("/task/delegate", {"type": "code", "prompt": "p", "sync": "true"}, "sync"),
        ("/tasks", {"project": "P", "title": "t", "due_date": 1_700_000_000}, "due_date"),
        ("/tasks", {"project": "P", "title": "t", "due_date": "1700000000"}, "due_date"),
        ("/tasks", {"project": "P", "title": "t", "due_date": "9999-12-31T23:00:00-05:00"}, "due_date"),
        ("/tasks", {"project": "P", "title": "t", "tags": "a,b"}, "tags"),
        ("/tasks", {"project": "P", "title": "t", "related_handoff_id": 12}, "related_handoff_id"),
        ("/tasks", {"project": "P", "title": "t", "key": "0b3e6c9e-6c55-4a38-9b8e-3a1f9e0c2d11"}, "key"),
        ("/tasks", {"project": "P", "title": "t", "priority": "HIGH"}, "priority"),
        ("/tasks", {"project": " P", "title": "t"}, "project"),
        ("/tasks", {"project": "P", "title": "   "}, "title"),
        (
            "/handoffs",
            {
                "project": "P",
                "task": "t",
                "direction": "cc_to_ai",
                "content": "c",
                "expires_at": "2020-01-01T00:00:00Z",
            },
            "expires_at",
        ),
        ("/task/delegate", {"type": "code", "prompt": "p" * 100_001}, "prompt"),
    ],
)
def test_no_coercion_and_the_field_is_named(api, path, body, field):
    result = problem(api.post(path, json=body), 400, "INVALID_REQUEST")
    assert field_of(result) == field, result
    assert result["detail"].startswith(f"{field}:"), result


def test_invalid_utf8_in_a_path_or_query_is_refused(tracker_url, make_key):
    import httpx

    key = make_key("admin")
    with httpx.Client(base_url=tracker_url, headers={"Authorization": f"Bearer {key}"}) as admin:
        resp = admin.put("/ids/%FF/US", json={"last_value": 3})
        assert field_of(problem(resp, 400, "INVALID_REQUEST")) == "path"
        assert field_of(problem(admin.get("/tasks?project=%C3%28"), 400, "INVALID_REQUEST")) == "query"
        assert ok(admin.get("/ids"))["counters"] == [], "no counter for project U+FFFD"
        ok(admin.get("/tasks?project=caf%C3%A9"))  # valid UTF-8 is fine


# A JSON value as the rule admits it: any mix of objects, lists, strings, numbers, booleans, null.
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()


def _json_values(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return _scalars
    inner = _json_values(depth - 1)
    return st.one_of(_scalars, st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3))


@hypothesis.settings(max_examples=200, deadline=None, derandomize=True, database=None)
@hypothesis.given(value=_json_values(6), wrap=st.integers(0, MAX_JSON_DEPTH - 6))
def test_any_value_the_rule_admits_can_be_served(value, wrap):
    """The proof behind "no response fails after its commit": what the rule admits encodes."""
    from tracker_service.domain.common import _stored_json

    value = nested(wrap, value)
    try:
        _stored_json(value)
    except ValueError:
        return  # refused before anything is written
    row = {
        "id": "0b3e6c9e-6c55-4a38-9b8e-3a1f9e0c2d11",
        "key": "TASK-001",
        "project": "p",
        "title": "t",
        "description": None,
        "priority": "medium",
        "status": "in_progress",
        "assigned_to": "a",
        "tags": [],
        "notes": None,
        "completion_notes": None,
        "inputs": value,
        "outputs": value,
        "due_date": None,
        "related_handoff_id": None,
        "depends_on": [],
        "result": value,
        "type": None,
        "lease_expires_at": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "completed_at": None,
        "requires_review": False,
        "review_notes": None,
        "parent": None,
        "auto_complete": False,
        "children": None,
    }
    from litestar.plugins.pydantic import PydanticInitPlugin

    encoded = encode_json(TaskOut.from_mapping(row), get_serializer(PydanticInitPlugin.encoders()))
    assert json.loads(encoded)["inputs"] == json.loads(json.dumps(value))


def test_times_with_any_offset_are_kept_as_the_same_instant(api, project):
    # PostgreSQL takes offsets up to 15:59 only; ISO 8601 (and Python) allow more.
    for path, body in (
        ("/tasks", {"project": project, "title": "a", "due_date": "2652-02-28T03:43:00-21:05"}),
        ("/tasks/batch", {"tasks": [{"project": project, "title": "b", "due_date": "2652-02-28T03:43:00-21:05"}]}),
    ):
        ok(api.post(path, json=body), 201)
    dues = {t["due_date"] for t in ok(api.get("/tasks", params={"project": project}))["tasks"]}
    assert dues == {"2652-02-29T00:48:00Z"}, dues
