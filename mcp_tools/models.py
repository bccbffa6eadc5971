"""What the tools return: the tracker's JSON, typed, so every tool publishes an ``outputSchema``.

Fields the tracker may omit default to ``None`` (or empty), and fields it adds later are
ignored, so a newer tracker never breaks an older bridge. Timestamps stay ISO 8601 strings.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)


def compact_schema(schema: dict[str, Any]) -> None:
    """Drop pydantic's ``title``s and ``default``s of a model's own properties (tools' schemas get
    ``toolsets.common.lean_schema`` on top, which also folds away the null branches).
    """
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        prop.pop("default", None)


# Text the tracker may leave out. Answers leave out every field that is null (Out), so an optional
# field is published as its plain type (a string here), never as anyOf of it and null: shorter in
# tools/list, and every client's schema dialect has it.
Maybe = str | None


@functools.cache
def _optional_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, field in model.model_fields.items() if not field.is_required())


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=compact_schema)

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Optional fields that are null are left out: absent means none, and the answer stays compact.

        A required field keeps its null (``NextTask.task``): there the null is the answer.
        """
        data: dict[str, Any] = handler(self)
        optional = _optional_fields(type(self))
        return {key: value for key, value in data.items() if value is not None or key not in optional}

    @classmethod
    def of(cls, record: BaseModel) -> Self:
        """The fields of this shape from a fuller record (a write's answer from the whole task)."""
        return cls.model_validate(record.model_dump())


class Dependency(Out):
    id: str
    key: Maybe = None
    status: Maybe = None


class TaskSummary(Out):
    id: str
    key: str
    project: str
    title: str
    status: str
    priority: str
    assigned_to: Maybe = None
    tags: list[str] = []
    due_date: Maybe = None
    updated_at: str


class Task(TaskSummary):
    task_id: str  # the key again: spec 001's name
    description: Maybe = None
    notes: Maybe = None
    completion_notes: Maybe = None
    inputs: Any = None
    outputs: Any = None
    result: Any = None
    related_handoff_id: Maybe = None
    depends_on: list[Dependency] = []
    type: Maybe = None
    lease_expires_at: Maybe = None
    created_at: str
    completed_at: Maybe = None
    requires_review: bool = False
    review_notes: Maybe = None
    parent: Dependency | None = None
    # {total, by_status}: published as a plain object, its own $defs in four output schemas cost more.
    children: Annotated[dict[str, int | dict[str, int]] | None, WithJsonSchema({"type": "object"})] = None
    conversation_id: Maybe = None


# What a write of a task answers: where the task stands now, not every field again (get_task has them).
class TaskState(TaskSummary):
    task_id: str  # the key again: spec 001's name
    lease_expires_at: Maybe = None
    completed_at: Maybe = None
    review_notes: Maybe = None


# A heartbeat's answer: just the lease, not the whole task again.
class Lease(Out):
    task_id: str
    status: str
    assigned_to: Maybe = None
    lease_expires_at: Maybe = None


class NextTask(Out):
    task: Task | None = Field(description="null when none matches.")
    hint: Maybe = Field(None, description="Why no task.")


class Page(Out):
    total: int | None = None
    next_cursor: str | None = None  # absent on the last page


class TaskPage(Page):
    tasks: list[TaskSummary]


class AddedTasks(Out):
    success: bool
    tasks_added: int
    task_ids: list[str]  # keys, in input order (add_task says so)
    ids: list[str] = []


class Deleted(Out):
    deleted: Literal[True] = True
    task_id: str


class AllocatedId(Out):
    next_id: str
    number: int | None = None


class Reservation(Out):
    reservation_id: str
    reserved_ids: list[str]
    expires_at: str
    type: Maybe = None
    project: Maybe = None
    status: Maybe = None


class HandoffBase(Out):
    id: str
    project: str
    task: str
    direction: Maybe = None
    from_agent: Maybe = None
    to_agent: Maybe = None
    status: str
    response_to: Maybe = None
    expires_at: Maybe = None
    created_at: Maybe = None
    updated_at: Maybe = None


# A list item carries the first line and the size instead of the content.
class HandoffSummary(HandoffBase):
    summary: Maybe = None
    size: int | None = Field(None, description="Characters of content.")


# What a write returns: the handoff without its content (the caller already has it).
class HandoffReceipt(HandoffBase):
    public_url: str | None = None  # serves the markdown without a key (create_handoff says so)


# A status move's answer: where the handoff stands now.
class HandoffState(Out):
    id: str
    status: str
    updated_at: Maybe = None


class Handoff(HandoffReceipt):
    content: str
    metadata: dict[str, Any] | None = None
    next_cursor: str | None = Field(None, description="The content goes on: pass as cursor.")


class HandoffPage(Page):
    handoffs: list[HandoffSummary]


class LogEntry(Out):
    timestamp: str
    event: str | None = Field(None, description="e.g. task.created")
    project: Maybe = None
    summary: str
    id: Maybe = None
    actor: Maybe = None
    # The tracker's event id: where a page ends, for the cursor; not part of the answer.
    _event_id: int | None = PrivateAttr(None)

    @property
    def event_id(self) -> int | None:
        return self._event_id

    @model_validator(mode="wrap")
    @classmethod
    def _keep_event_id(cls, data: Any, handler: ModelWrapValidatorHandler[LogEntry]) -> LogEntry:
        entry = handler(data)
        if isinstance(data, dict) and isinstance(data.get("event_id"), int):
            entry._event_id = data["event_id"]
        return entry


class LogPage(Page):
    entries: list[LogEntry]


class DelegationResult(Out):
    success: bool
    output: Maybe = None
    error: Maybe = None


class Delegation(Out):
    task_id: str
    status: str
    result: DelegationResult | None = None
