from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from tracker_service.domain.common import OutModel, StoredJson, StoredObject, StrictModel, Title, UuidValue
from tracker_service.domain.tasks.schemas import TaskRef

Role = Literal["user", "assistant", "tool", "system"]
MESSAGES_PER_APPEND = 100


class ConversationIn(StrictModel):
    title: Title | None = None
    metadata: StoredObject | None = None


class MessageIn(StrictModel):
    role: Role
    content: Annotated[str, StringConstraints(max_length=1_000_000)] = Field(description="The turn's text")
    tool_calls: StoredJson = Field(None, description="The tool calls of an assistant turn, as the model gave them")
    metadata: StoredObject | None = None
    tasks: Annotated[list[TaskRef], Field(max_length=50)] | None = Field(
        None, description="Tasks this turn created or touched (key or UUID); each remembers the conversation"
    )
    handoffs: Annotated[list[UuidValue], Field(max_length=50)] | None = Field(
        None, description="Handoffs this turn created (ids)"
    )


class MessagesIn(StrictModel):
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=MESSAGES_PER_APPEND)]


class MessageOut(OutModel):
    seq: int = Field(description="1, 2, 3... in the order the database stored them")
    role: str
    content: str
    tool_calls: Any
    metadata: dict[str, Any] | None
    tasks: list[UUID]
    handoffs: list[UUID]
    created_at: datetime


class ConversationSummary(OutModel):
    id: UUID
    title: str | None
    message_count: int
    created_at: datetime
    updated_at: datetime


class ConversationOut(ConversationSummary):
    metadata: dict[str, Any] | None
    messages: list[MessageOut] = Field(description="A page of messages, oldest first")
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end")


class ConversationPage(OutModel):
    conversations: list[ConversationSummary]
    total: int
    has_more: bool


class AppendedOut(OutModel):
    conversation_id: UUID
    messages: list[MessageOut]
