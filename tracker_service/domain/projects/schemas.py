"""Per-project settings: the review gate's defaults."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from tracker_service.domain.common import AgentName, OutModel, StrictModel


class ProjectSettingsIn(StrictModel):
    requires_review: bool | None = Field(None, description="New tasks of the project require review")
    reviewers: Annotated[list[AgentName], Field(max_length=100)] | None = Field(
        None,
        description="Who may give review verdicts (agent names or key names); empty: any key but the worker's",
    )


class ProjectSettingsOut(OutModel):
    project: str
    requires_review: bool
    reviewers: list[str]
    updated_at: datetime | None
