"""POST /import: what is sent and the report that comes back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from tracker_service.domain.common import OutModel, ProjectName, StrictModel


class ImportIn(StrictModel):
    # For the OpenAPI document, the rule service.read_rows applies: a dump is content or records
    # and names its own projects; another tracker's file is content, put in the project given.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"format": {"const": "dump"}, "project": {"type": "null"}},
                    "not": {
                        "required": ["content", "records"],
                        "properties": {"content": {"type": "string"}, "records": {"type": "array"}},
                    },
                },
                {
                    "required": ["format", "project", "content"],
                    "properties": {
                        "format": {"enum": ["taskmaster", "beads", "todo"]},
                        "project": {"type": "string"},
                        "content": {"type": "string"},
                        "records": {"type": "null"},
                    },
                },
            ]
        }
    )
    format: Literal["dump", "taskmaster", "beads", "todo"] = Field(
        "dump", description="dump (records of `tracker export`), taskmaster (tasks.json), beads (issues.jsonl), todo"
    )
    project: ProjectName | None = Field(None, description="Project for the tasks of a taskmaster, beads or todo file")
    content: str | None = Field(None, description="The file's text (a dump: one record a line)")
    records: list[dict[str, Any]] | None = Field(None, description="A dump's records, instead of content")
    dry_run: bool = Field(False, description="Report what would change and write nothing")


class ConflictOut(OutModel):
    line: int = Field(description="Line (or record, or task) number in what was sent")
    kind: str
    name: str = Field(description="project/key of a task, id of a handoff, or the row's key")
    detail: str


class ImportReportOut(OutModel):
    dry_run: bool
    created: dict[str, int] = Field(description="Rows written, by kind")
    updated: dict[str, int] = Field(description="Stored rows moved forward (ID counters take the larger value)")
    unchanged: dict[str, int] = Field(description="Rows already stored as sent, by kind")
    conflicts: list[ConflictOut] = Field(description="Rows stored differently: the stored one is kept")
