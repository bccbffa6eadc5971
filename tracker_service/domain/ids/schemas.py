from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AliasChoices, Field

from tracker_service.domain.common import IdType, OutModel, ProjectName, StrictModel


class AllocateIn(StrictModel):
    type: IdType
    project_id: ProjectName = Field(validation_alias=AliasChoices("project_id", "project"))


class ReserveIn(AllocateIn):
    count: Annotated[int, Field(ge=1, le=100, description="How many contiguous IDs (1-100)")]
    ttl_seconds: Annotated[int, Field(ge=60, le=30 * 86_400)] | None = Field(
        None, description="How long the reservation stays active before it is listed as lapsed"
    )


class ReleaseIn(StrictModel):
    keep: Annotated[list[str], Field(max_length=100)] = Field(
        default_factory=list, description="IDs of the reservation that were used; the rest return to the pool"
    )


class CounterIn(StrictModel):
    last_value: Annotated[int, Field(ge=0, le=10**12, description="The highest number already in use")]


class NextIdOut(OutModel):
    next_id: str
    number: int
    type: str
    project: str


class CounterOut(OutModel):
    project: str | None = Field(description="null for a counter shared by every project (TASK)")
    scope: Literal["project", "tenant"]
    type: str
    last_value: int
    last_id: str | None
    next_id: str


class CounterList(OutModel):
    counters: list[CounterOut]


class ReservationOut(OutModel):
    reservation_id: UUID
    project: str
    type: str
    status: Literal["active", "lapsed", "committed", "released"]
    reserved_ids: list[str]
    released_ids: list[str]
    first_value: int
    expires_at: datetime
    created_at: datetime
    closed_at: datetime | None


class ReservationPage(OutModel):
    reservations: list[ReservationOut]
    total: int
    has_more: bool
