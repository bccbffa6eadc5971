"""The record format (domain/transfer/records.py): a row to a line and back, and refusals named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracker_service.domain.transfer.records import KINDS, RecordError, dumps, loads, record_of, row_of


def task_row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        "tenant": "t",
        "project": "p",
        "key": "TASK-001",
        "title": "Écrire ✓",
        "description": None,
        "priority": "high",
        "priority_rank": 1,
        "status": "pending",
        "assigned_to": None,
        "tags": ["a", "b"],
        "notes": None,
        "completion_notes": None,
        "inputs": {"n": [1, 2.5, {"deep": None}]},
        "outputs": None,
        "due_date": datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        "related_handoff_id": None,
        "result": None,
        "type": None,
        "lease_expires_at": None,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "completed_at": None,
        "requires_review": False,
        "review_notes": None,
        "review_requested_by": None,
        "parent_id": None,
        "auto_complete": False,
        "open_children": 3,
        "conversation_id": None,
    }
    return {**row, **over}


def test_a_row_makes_a_record_and_back_exactly():
    record = record_of("task", task_row())
    assert list(record)[:3] == ["kind", "id", "tenant"]
    assert "priority_rank" not in record and "open_children" not in record  # kept by the database
    assert record["due_date"] == "2026-05-01T12:00:00.000000Z" and record["id"].endswith("0001")
    line = dumps(record)
    assert "\n" not in line and "Écrire ✓" in line
    table, values = row_of(loads(line))
    assert table.name == "tasks"
    assert values["due_date"] == datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert values["id"] == uuid.UUID("00000000-0000-4000-8000-000000000001")
    assert dumps(record_of("task", {**values, "priority_rank": 0, "open_children": 0})) == line


def test_kinds_come_in_write_order():
    assert KINDS.index("handoff") < KINDS.index("task") < KINDS.index("task_dependency") < KINDS.index("event")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"kind": "tusk"}, "kind", "kind must be one of"),
        ({"colour": "red"}, "colour", "no field 'colour'"),
        ({"title": 5}, "title", "must be a string"),
        ({"title": None}, "title", "must not be null"),
        ({"id": "not-a-uuid"}, "id", "task.id"),
        ({"due_date": "2026-05-01T12:00:00"}, "due_date", "time zone"),
        ({"requires_review": 1}, "requires_review", "true or false"),
        ({"tags": "a"}, "tags", "must be a list"),
        ({"title": "a\x00b"}, "title", "NUL"),
        ({"inputs": {"k": ["\ud800"]}}, "inputs", "k.0 contains a lone UTF-16 surrogate"),
        ({"inputs": float("inf")}, "inputs", "finite"),
    ],
)
def test_bad_values_are_refused_by_field(change, field, words):
    record = {**record_of("task", task_row()), **change}
    with pytest.raises(RecordError) as caught:
        row_of(record)
    assert caught.value.field == field and words in caught.value.detail


def test_stored_json_obeys_the_depth_rule():
    deep: object = 1
    for _ in range(33):
        deep = [deep]
    with pytest.raises(RecordError, match="33 levels deep") as caught:
        row_of({**record_of("task", task_row()), "result": deep})
    assert caught.value.field == "result"


def test_a_missing_column_the_database_fills_may_be_left_out_but_not_others():
    record = record_of("task", task_row())
    del record["id"], record["created_at"]
    assert "id" not in row_of(record)[1]
    del record["title"]
    with pytest.raises(RecordError, match="needs 'title'"):
        row_of(record)


def test_lines_that_are_not_objects_are_refused():
    for line in ("[1]", "{", '{"a": NaN}'):
        with pytest.raises(RecordError):
            loads(line)


def test_a_record_stays_on_one_line_however_lines_are_split():
    record = record_of("task", task_row(title="a\u2028b\x85c\u2029d\re"))
    line = dumps(record)
    assert len(line.splitlines()) == 1 and loads(line)["title"] == "a\u2028b\x85c\u2029d\re"
