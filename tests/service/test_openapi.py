"""The served OpenAPI document says what the validators enforce. Key properties checked directly,
in process, so a regression shows without the fuzzer (test_fuzz.py checks the whole document
against the running API)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st
from litestar.testing import TestClient
from pydantic import TypeAdapter, ValidationError

from tracker_service.app import create_app
from tracker_service.domain.common import (
    ISO_DATETIME_PATTERN,
    NAME_PATTERN,
    TEXT_PATTERN,
    UUID_TEXT_PATTERN,
    AwareDatetime,
    UuidValue,
)
from tracker_service.domain.ids.schemas import ReserveIn
from tracker_service.settings import Settings

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def served(pg_url: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    app = create_app(Settings(database_url=pg_url, sweep_interval_seconds=3600, rate_limit_per_minute=0))
    with TestClient(app) as client:
        yield client, client.get("/schema/openapi.json").json()


@pytest.fixture(scope="module")
def document(served: tuple[TestClient, dict[str, Any]]) -> dict[str, Any]:
    return served[1]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_models(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each documented request body's model schema, by operation."""
    found = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                ref = next(s for s in schema.get("anyOf", [schema]) if "$ref" in s)
                found[f"{method.upper()} {path}"] = resolve(document, ref)
    return found


def field(document: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    """A property's schema, its non-null branch when it is optional."""
    schema = document["components"]["schemas"][model]["properties"][name]
    return next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)


def test_request_bodies_refuse_unknown_fields(document):
    models = body_models(document)
    assert len(models) >= 12, sorted(models)
    for operation, schema in models.items():
        assert schema["additionalProperties"] is False, operation
    tasks = resolve(document, document["components"]["schemas"]["BatchIn"]["properties"]["tasks"]["items"])
    assert tasks["additionalProperties"] is False  # nested models too


def test_bounds_inside_optional_types_are_served(document):
    for model in ("ClaimIn", "HeartbeatIn"):
        lease = field(document, model, "lease_seconds")
        assert (lease["type"], lease["minimum"], lease["maximum"]) == ("integer", 10, 86_400), model
    ttl = field(document, "ReserveIn", "ttl_seconds")
    assert (ttl["minimum"], ttl["maximum"]) == (60, 30 * 86_400)
    assert field(document, "HandoffIn", "expires_in_seconds")["minimum"] == 60
    assert field(document, "TaskIn", "tags")["maxItems"] == 50


def test_name_and_text_patterns_are_served(document):
    assert field(document, "ClaimIn", "project")["pattern"] == NAME_PATTERN
    assert field(document, "ClaimIn", "agent")["pattern"] == NAME_PATTERN
    assert field(document, "TaskIn", "title")["pattern"] == TEXT_PATTERN
    assert field(document, "TaskIn", "due_date")["pattern"] == ISO_DATETIME_PATTERN
    assert field(document, "HandoffIn", "response_to")["pattern"] == UUID_TEXT_PATTERN
    # Strings without a pattern of their own say that a NUL is refused (web/body.py).
    assert field(document, "HandoffIn", "content")["not"] == {"pattern": r"\x00"}
    assert field(document, "TaskIn", "inputs")["$ref"].endswith("/JsonValue")


def test_every_name_a_field_answers_to_is_served(document):
    reserve = document["components"]["schemas"]["ReserveIn"]
    assert {"project", "project_id"} <= reserve["properties"].keys()
    assert {"anyOf": [{"required": ["project_id"]}, {"required": ["project"]}]} in reserve["allOf"]
    assert "project_id" not in reserve.get("required", [])


def test_uuid_path_parameters_say_so(document):
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if method in HTTP_METHODS else []:
                if parameter["name"] in ("handoff_id", "reservation_id"):
                    assert parameter["schema"]["format"] == "uuid", (method, path)
                    checked += 1
    assert checked >= 7


def test_one_of_two_query_parameters_is_required(document):
    (grouped,) = [
        p for p in document["paths"]["/ids/next"]["get"]["parameters"] if p["in"] == "query" and "_or_" in p["name"]
    ]
    assert (grouped["required"], grouped["style"], grouped["explode"]) == (True, "form", True)
    assert set(grouped["schema"]["properties"]) == {"project", "project_id"} and grouped["schema"]["minProperties"] == 1


def test_filters_name_their_values(document):
    parameters = {p["name"]: p["schema"] for p in document["paths"]["/handoffs"]["get"]["parameters"]}
    status = re.compile(parameters["status"]["pattern"])
    assert status.fullmatch("pending,read") and status.fullmatch("") and not status.fullmatch("pending,")
    log = {p["name"]: p["schema"] for p in document["paths"]["/log"]["get"]["parameters"]}
    assert {"task", "task.created"} <= set(log["type"]["enum"])


def test_streams_are_event_streams(document):
    for path in ("/events", "/whoami/watch"):
        assert list(document["paths"][path]["get"]["responses"]["200"]["content"]) == ["text/event-stream"], path


def test_options_allow_every_documented_method(served, make_key):
    client, document = served
    headers = {"Authorization": f"Bearer {make_key('admin')}"}
    ids = {
        "handoff_id": "0b3e6c9e-6c55-4a38-9b8e-3a1f9e0c2d11",
        "reservation_id": "0b3e6c9e-6c55-4a38-9b8e-3a1f9e0c2d11",
    }
    for path, item in document["paths"].items():
        if path.startswith("/schema"):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), path)
        resp = client.options(url, headers=headers)
        assert resp.status_code == 204, (path, resp.text)
        allowed = {m.strip().lower() for m in resp.headers["allow"].split(",")}
        assert allowed == (item.keys() & HTTP_METHODS) | {"options"}, path


def test_a_whole_number_is_an_integer():
    """JSON Schema (OpenAPI 3.1) counts 5.0 as an integer: so does every request model."""
    assert ReserveIn.model_validate({"type": "US", "project": "p", "count": 5.0}).count == 5
    for count in (5.5, "5", True):
        with pytest.raises(ValidationError):
            ReserveIn.model_validate({"type": "US", "project": "p", "count": count})


_DATETIME = TypeAdapter(AwareDatetime)
_texts = st.text(alphabet="0123456789-:.,+TtZz _", max_size=32)


def _iso_texts() -> st.SearchStrategy[str]:
    """Times written in every way the pattern means to allow, and near misses."""
    zones = st.sampled_from(["", "Z", "z", "+00:00", "-05:30", "+2359", "+24:00", "+5:00"])
    fractions = st.sampled_from(["", ".1", ",123456", ".1234567", "."])
    times = st.builds(
        lambda t, f, z, sep, short: f"{sep}{t.strftime('%H:%M' if short else '%H:%M:%S')}{'' if short else f}{z}",
        st.times(),
        fractions,
        zones,
        st.sampled_from(["T", "t", " ", "_", "x"]),
        st.booleans(),
    )
    dates = st.dates().map(str) | st.from_regex(r"\A\d{4}-\d{2}-\d{2}\Z")
    return st.builds(lambda d, t: d + t, dates, st.just("") | times) | _texts


@hypothesis.settings(max_examples=400, deadline=None, derandomize=True, database=None)
@hypothesis.given(text=_iso_texts())
def test_the_served_time_pattern_is_what_is_accepted(text):
    matches = re.fullmatch(ISO_DATETIME_PATTERN, text) is not None
    try:
        _DATETIME.validate_python(text)
        accepted = True
    except ValidationError as exc:
        accepted = False
        # The pattern cannot say this one: an instant within a zone's offset of the range's ends.
        if "out of range once converted to UTC" in str(exc):
            return
    assert matches == accepted, text


@hypothesis.settings(max_examples=200, deadline=None, derandomize=True, database=None)
@hypothesis.given(value=st.uuids(), form=st.sampled_from(["{}", "{{{}}}", "urn:uuid:{}", "URN:UUID:{}", " {}"]))
def test_the_served_uuid_pattern_is_what_is_accepted(value, form):
    for text in (form.format(value), form.format(value.hex), form.format(str(value).upper())):
        matches = re.fullmatch(UUID_TEXT_PATTERN, text) is not None
        try:
            TypeAdapter(UuidValue).validate_python(text)
            accepted = True
        except ValidationError:
            accepted = False
        assert matches == accepted, text


def test_range_ends_are_refused_after_the_zone():
    # The one gap the pattern leaves (see ISO_DATETIME_PATTERN): refused by the validator.
    for text in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00"):
        assert re.fullmatch(ISO_DATETIME_PATTERN, text)
        with pytest.raises(ValidationError, match="out of range"):
            _DATETIME.validate_python(text)
    assert _DATETIME.validate_python("2026-05-01") == datetime(2026, 5, 1, tzinfo=UTC)
    later = _DATETIME.validate_python("2026-05-01T12:00:00+0100")
    assert later == datetime(2026, 5, 1, 11, tzinfo=UTC) and later.utcoffset() == timedelta(0)  # kept in UTC
