"""Spec 004's delegation API: hand a prompt to a worker, optionally wait for its result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from tracker_service.domain.common import OutModel, StoredObject, StrictModel
from tracker_service.domain.tasks.schemas import DESCRIPTION_MAX

MAX_WAIT_SECONDS = 3600
DEFAULT_WAIT_SECONDS = 300


def priority_level(priority: int) -> Literal["critical", "high", "medium", "low"]:
    """Spec 004's 1..10 onto the four levels: 9-10 critical, 7-8 high, 4-6 medium, 1-3 low."""
    return "critical" if priority >= 9 else "high" if priority >= 7 else "medium" if priority >= 4 else "low"


# The rules of DelegateIn._options, for the OpenAPI document.
_OPTIONS_RULES: dict[str, Any] = {
    "allOf": [
        {
            "properties": {
                "options": {
                    "properties": {
                        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_SECONDS},
                        # 1 to 100 characters once surrounding whitespace is set aside
                        "project": {
                            "type": ["string", "null"],
                            "pattern": r"^\s*[^\s\x00](?:[^\x00]{0,98}[^\s\x00])?\s*$",
                        },
                    }
                }
            }
        }
    ]
}


class DelegateIn(StrictModel):
    model_config = ConfigDict(json_schema_extra=_OPTIONS_RULES)

    type: Literal["code", "general"] = Field(description="Kind of work: workers claim by type")
    # The prompt becomes the task's description: the same limit, so a long one is reported as `prompt`.
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=DESCRIPTION_MAX)]
    priority: Annotated[int, Field(ge=1, le=10)] = 5
    sync: bool = Field(False, description="Wait for a worker to finish and return its result")
    files: Annotated[list[Annotated[str, StringConstraints(max_length=4096)]], Field(max_length=1000)] = Field(
        default_factory=list
    )
    options: StoredObject = Field(
        default_factory=dict,
        description="timeout (seconds to wait when sync, default 300, max 3600), project (default: delegated), ...",
    )

    @model_validator(mode="after")
    def _options(self) -> DelegateIn:
        timeout = self.options.get("timeout", DEFAULT_WAIT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_WAIT_SECONDS:
            raise ValueError(f"options.timeout must be a number of seconds, above 0 and at most {MAX_WAIT_SECONDS}")
        project = self.options.get("project")
        if project is not None and (not isinstance(project, str) or not 0 < len(project.strip()) <= 100):
            raise ValueError("options.project must be a project name of 1 to 100 characters")
        return self

    @property
    def wait_seconds(self) -> float:
        return float(self.options.get("timeout", DEFAULT_WAIT_SECONDS))


class DelegateResult(OutModel):
    success: bool
    output: str | None
    error: str | None


class DelegateOut(OutModel):
    task_id: UUID
    status: str
    result: DelegateResult | None = None


class DelegatedStatus(OutModel):
    task_id: UUID
    key: str
    status: str
    result: DelegateResult | None
    created_at: datetime
    updated_at: datetime
