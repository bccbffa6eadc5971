"""What the tools return: the tracker's JSON, typed, so every tool publishes an ``outputSchema``.

Fields the tracker may omit default to ``None`` (or empty), and fields it adds later are
ignored, so a newer tracker never breaks an older bridge. Timestamps stay ISO 8601 strings.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def compact_schema(schema: dict[str, Any]) -> None:
    """Drop pydantic's ``title``s (restated field names) and ``default``s: fewer characters in
    ``tools/list``, same contract. Nullable fields keep the portable ``anyOf`` spelling (a ``type``
    list is shorter, but clients that map schemas onto single-type dialects reject it).
    """
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        prop.pop("default", None)


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=compact_schema)


class Dependency(Out):
    id: str
    key: str | None = None
    status: str | None = None


class TaskSummary(Out):
    id: str
    key: str
    project: str
    title: str
    status: str
    priority: str
    assigned_to: str | None = None
    tags: list[str] = []
    due_date: str | None = None
    updated_at: str


class Task(TaskSummary):
    task_id: str = Field(description="Same as key.")
    description: str | None = None
    notes: str | None = None
    completion_notes: str | None = None
    inputs: Any = None
    outputs: Any = None
    result: Any = None
    related_handoff_id: str | None = None
    depends_on: list[Dependency] = []
    type: str | None = None
    lease_expires_at: str | None = None
    created_at: str
    completed_at: str | None = None


# A heartbeat's answer: just the lease, not the whole task again.
class Lease(Out):
    task_id: str = Field(description="Task key.")
    status: str
    assigned_to: str | None = None
    lease_expires_at: str | None = None


class NextTask(Out):
    task: Task | None = Field(description="null when no task matches.")


class Page(Out):
    total: int
    has_more: bool
    next_offset: int | None = Field(None, description="Pass as offset for the next page; null on the last page.")


class TaskPage(Page):
    tasks: list[TaskSummary]


class AddedTasks(Out):
    success: bool
    tasks_added: int
    task_ids: list[str] = Field(description="Keys of the new tasks, in input order.")
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
    type: str | None = None
    project: str | None = None
    status: str | None = None


class HandoffBase(Out):
    id: str
    project: str
    task: str
    direction: str | None = None
    from_agent: str | None = None
    to_agent: str | None = None
    status: str
    response_to: str | None = None
    expires_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


# A list item carries the first line and the size instead of the content.
class HandoffSummary(HandoffBase):
    summary: str | None = None
    size: int | None = Field(None, description="Characters of content.")


# What a write returns: the handoff without its content (the caller already has it).
class HandoffReceipt(HandoffBase):
    public_url: str | None = Field(None, description="Serves the markdown without a key.")


class Handoff(HandoffReceipt):
    content: str
    metadata: dict[str, Any] | None = None


class HandoffPage(Page):
    handoffs: list[HandoffSummary]


class LogEntry(Out):
    timestamp: str
    type: str
    event: str | None = Field(None, description="e.g. task.created")
    project: str | None = None
    summary: str
    id: str | None = None
    actor: str | None = None


class LogPage(Out):
    entries: list[LogEntry]


class DelegationResult(Out):
    success: bool
    output: str | None = None
    error: str | None = None


class Delegation(Out):
    task_id: str
    status: str
    result: DelegationResult | None = None
