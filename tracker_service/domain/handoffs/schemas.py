"""Handoffs: markdown messages between agents, with a status and reply threads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AliasChoices, ConfigDict, Field, StringConstraints, field_validator, model_validator

from tracker_service.domain.common import (
    AgentName,
    AwareDatetime,
    OutModel,
    ProjectName,
    Slug,
    StoredObject,
    StrictModel,
    UuidValue,
)

HandoffStatus = Literal["pending", "read", "processed", "archived"]
HANDOFF_STATUSES: tuple[str, ...] = ("pending", "read", "processed", "archived")
# Spec 000's two agents: Claude Code ("cc") and Claude.ai ("claude_ai").
DIRECTIONS: dict[str, tuple[str, str]] = {"cc_to_ai": ("cc", "claude_ai"), "ai_to_cc": ("claude_ai", "cc")}


def direction_of(from_agent: str, to_agent: str) -> str | None:
    return next((d for d, pair in DIRECTIONS.items() if pair == (from_agent, to_agent)), None)


def _given(*names: str) -> dict[str, Any]:
    """JSON Schema: each of these fields is present and not null."""
    return {"required": list(names), "properties": {name: {"not": {"type": "null"}} for name in names}}


# The rules of _agents below, for the OpenAPI document (expires_at being in the future has no
# JSON Schema word; its description says it).
_AGENT_RULES: dict[str, Any] = {
    "allOf": [
        {"anyOf": [_given("direction"), _given("from_agent", "to_agent")]},
        *(
            {
                "if": _given("direction") | {"properties": {"direction": {"const": direction}}},
                "then": {
                    "properties": {"from_agent": {"enum": [pair[0], None]}, "to_agent": {"enum": [pair[1], None]}}
                },
            }
            for direction, pair in DIRECTIONS.items()
        ),
        {"not": _given("expires_at", "expires_in_seconds")},
    ]
}


class HandoffIn(StrictModel):
    model_config = ConfigDict(json_schema_extra=_AGENT_RULES)

    project: ProjectName = Field(validation_alias=AliasChoices("project", "project_id"))
    task: Slug = Field(description="Short slug naming what the handoff is about, e.g. sprint3-status-report")
    direction: Literal["cc_to_ai", "ai_to_cc"] | None = Field(
        None, description="Shorthand for from_agent/to_agent: cc_to_ai = cc -> claude_ai, ai_to_cc = claude_ai -> cc"
    )
    from_agent: AgentName | None = None
    to_agent: AgentName | None = None
    content: Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)] = Field(description="Markdown")
    metadata: StoredObject | None = None
    response_to: UuidValue | None = Field(None, description="The handoff this one answers (same tenant)")
    expires_at: AwareDatetime | None = Field(None, description="When it expires; must be in the future")
    expires_in_seconds: Annotated[int, Field(ge=60, le=366 * 86_400)] | None = None

    @model_validator(mode="after")
    def _agents(self) -> HandoffIn:
        if self.direction is not None:
            implied = DIRECTIONS[self.direction]
            given = (self.from_agent or implied[0], self.to_agent or implied[1])
            if given != implied:
                raise ValueError(
                    f"direction {self.direction} means {implied[0]} -> {implied[1]}; "
                    f"it disagrees with from_agent/to_agent {given[0]} -> {given[1]}"
                )
            self.from_agent, self.to_agent = implied
        if not self.from_agent or not self.to_agent:
            raise ValueError("give direction (cc_to_ai or ai_to_cc), or both from_agent and to_agent")
        if self.expires_at is not None and self.expires_in_seconds is not None:
            raise ValueError("give expires_at or expires_in_seconds, not both")
        return self

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("is in the past; a handoff must expire later than now")
        return value


class HandoffStatusIn(StrictModel):
    status: HandoffStatus = Field(description="pending -> read -> processed -> archived (forward only)")


class _HandoffFields(OutModel):
    id: UUID
    project: str
    task: str
    from_agent: str
    to_agent: str
    direction: str | None
    status: str
    response_to: UUID | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class HandoffOut(_HandoffFields):
    content: str
    metadata: dict[str, Any] | None
    public_url: str | None = Field(None, description="Where the markdown can be fetched without a key")


class HandoffSummary(_HandoffFields):
    summary: str = Field(description="First line of the content")
    size: int = Field(description="Length of the content in characters")


class HandoffPage(OutModel):
    handoffs: list[HandoffSummary]
    total: int
    has_more: bool


class ThreadOut(OutModel):
    handoffs: list[HandoffOut] = Field(description="The whole reply chain, oldest first")
