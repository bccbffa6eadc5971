"""Task request and response bodies. Field names of both source specs are accepted on input."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AliasChoices, ConfigDict, Field, StringConstraints, model_validator

from tracker_service.domain.common import (
    AgentName,
    AwareDatetime,
    OutModel,
    ProjectName,
    ShortName,
    StoredJson,
    StrictModel,
    Title,
    UuidValue,
)

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_UUID_SHAPED = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _completed_for_done(value: str) -> str:
    return "completed" if value == "done" else value


def _lower(value: str) -> str:
    return value.lower()


def _not_uuid_shaped(value: str) -> str:
    # A task is named by its key or its UUID: a key that reads as a UUID could never be reached by it.
    if _UUID_SHAPED.match(value):
        raise ValueError("must not look like a UUID (a UUID in a task reference means the task's id)")
    return value


StatusValue = Annotated[
    Literal["pending", "in_progress", "blocked", "in_review", "completed", "failed", "cancelled", "done"],
    AfterValidator(_completed_for_done),
    Field(
        description="pending | in_progress | blocked | in_review | completed | failed | cancelled ('done' = completed)"
    ),
]
CreateStatus = Annotated[
    Literal["pending", "in_progress", "blocked", "completed", "failed", "cancelled", "done"],
    AfterValidator(_completed_for_done),
    Field(description="pending | in_progress | blocked | completed | failed | cancelled ('done' = completed)"),
]
Priority = Literal["critical", "high", "medium", "low"]
TaskKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=KEY_PATTERN),
    AfterValidator(_not_uuid_shaped),
    Field(description="Human id such as TASK-051; assigned from the ID registry when omitted"),
]
Tag = ShortName
TaskType = Annotated[
    str,
    # Lowered once the pattern (written for both cases, as served) has been checked.
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"),
    AfterValidator(_lower),
    Field(description="Kind of work, for workers that claim by type (e.g. code, general); lower-cased"),
]
TaskRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=KEY_PATTERN),
    Field(description="A task's key (e.g. TASK-051) or UUID"),
]
DESCRIPTION_MAX = 100_000
LongText = Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)]


class TaskFields(StrictModel):
    """Fields that can be set both at creation and by PATCH."""

    title: Title | None = None
    description: LongText | None = None
    priority: Priority | None = None
    status: StatusValue | None = None
    assigned_to: AgentName | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    notes: LongText | None = None
    completion_notes: LongText | None = None
    inputs: StoredJson = None
    outputs: StoredJson = None
    due_date: AwareDatetime | None = None
    related_handoff_id: UuidValue | None = None
    depends_on: Annotated[list[TaskRef], Field(max_length=100)] | None = Field(
        None, description="Tasks that must be completed first: UUIDs or keys (keys within this task's project)"
    )
    result: StoredJson = None
    type: TaskType | None = None
    requires_review: bool | None = Field(
        None, description="Finishing needs a review by another key (default: the project's setting, else false)"
    )
    parent: TaskRef | None = Field(None, description="Key or UUID of the parent task, in the same project")
    auto_complete: bool | None = Field(None, description="Complete this task when its last open child closes")


class TaskIn(TaskFields):
    # For the OpenAPI document: the rule of _title_from_description, and that a task requiring
    # review is not created completed (create.py; a project's default is a rule of the data).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["title"], "properties": {"title": {"type": "string"}}},
                {"required": ["description"], "properties": {"description": {"type": "string", "pattern": r"\S"}}},
            ],
            "not": {
                "required": ["requires_review", "status"],
                "properties": {"requires_review": {"const": True}, "status": {"enum": ["completed", "done"]}},
            },
        }
    )
    project: ProjectName = Field(validation_alias=AliasChoices("project", "project_id"))
    key: TaskKey | None = Field(None, validation_alias=AliasChoices("key", "task_id"))
    # A task reaches in_review from in_progress, when its work is done: it is not created there.
    status: CreateStatus | None = None

    @model_validator(mode="after")
    def _title_from_description(self) -> TaskIn:
        if self.title is None:
            first = next((line.strip() for line in (self.description or "").splitlines() if line.strip()), None)
            if first is None:
                raise ValueError("a task needs a title or a description (its first line becomes the title)")
            self.title = (first.lstrip("# ") or first)[:500].rstrip()
        return self


class TaskPatch(TaskFields):
    # May be left out, but not cleared: null is refused (the fields every task has).
    title: Title = None  # type: ignore[assignment]
    priority: Priority = None  # type: ignore[assignment]
    requires_review: bool = None  # type: ignore[assignment]
    auto_complete: bool = None  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def _immutable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixed = sorted({"project", "project_id", "key", "task_id", "id"} & data.keys())
            if fixed:
                raise ValueError(f"{', '.join(fixed)} cannot be changed; create a new task instead")
        return data


class BatchIn(StrictModel):
    tasks: Annotated[list[TaskIn], Field(min_length=1, max_length=200)]


class ClaimIn(StrictModel):
    project: ProjectName = Field(validation_alias=AliasChoices("project", "project_id"))
    agent: AgentName = Field(description="Name of the agent taking the task")
    lease_seconds: Annotated[int, Field(ge=10, le=86_400)] | None = None
    type: TaskType | None = Field(None, description="Only claim tasks of this type")


class StatusIn(StrictModel):
    status: StatusValue
    completion_notes: LongText | None = None
    result: StoredJson = None
    review_notes: LongText | None = Field(None, description="A reviewer's notes with a verdict (kept on the task)")
    agent: AgentName | None = Field(
        None, description="The agent reporting; when given, an in_progress task held by another agent is a 409"
    )


class HeartbeatIn(StrictModel):
    agent: AgentName
    lease_seconds: Annotated[int, Field(ge=10, le=86_400)] | None = None


class DependencyOut(OutModel):
    id: UUID
    key: str
    status: str


class ChildrenOut(OutModel):
    total: int
    by_status: dict[str, int]


class TaskOut(OutModel):
    id: UUID
    key: str
    task_id: str = Field(description="Same as key (spec 001 name)")
    project: str
    title: str
    description: str | None
    priority: str
    status: str
    assigned_to: str | None
    tags: list[str]
    notes: str | None
    completion_notes: str | None
    inputs: Any
    outputs: Any
    due_date: datetime | None
    related_handoff_id: UUID | None
    depends_on: list[DependencyOut]
    result: Any
    type: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    requires_review: bool
    review_notes: str | None
    parent: DependencyOut | None
    auto_complete: bool
    children: ChildrenOut | None = Field(description="Counts of the task's children; null when it has none")
    conversation_id: UUID | None = Field(None, description="The conversation whose message led to this task")

    @classmethod
    def from_row(cls, row: Any) -> TaskOut:
        return cls.from_mapping(dict(row._mapping))

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> TaskOut:
        data["task_id"] = data["key"]
        data["depends_on"] = data.get("depends_on") or []
        return cls.model_validate(data)


class TaskSummary(OutModel):
    id: UUID
    key: str
    task_id: str = Field(description="Same as key (spec 001 and 004 name)")
    project: str
    title: str
    status: str
    priority: str
    assigned_to: str | None
    tags: list[str]
    due_date: datetime | None
    created_at: datetime
    updated_at: datetime
    children: ChildrenOut | None


class TaskPage(OutModel):
    tasks: list[TaskSummary]
    total: int
    has_more: bool


class NextTaskOut(OutModel):
    task: TaskOut | None
    hint: str | None = Field(None, description="Why there is no task, when there is none (e.g. an unknown project)")


class StatusOut(OutModel):
    updated_task: TaskOut


class BatchOut(OutModel):
    success: bool
    tasks_added: int
    task_ids: list[str] = Field(description="Keys of the created tasks, in request order")
    ids: list[UUID]
