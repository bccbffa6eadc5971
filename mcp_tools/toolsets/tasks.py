"""Task tools (spec 001's get_next_task, update_task_status, add_task; spec 000's CRUD) and the
``tracker://tasks/{ref}`` resource.

Merged on purpose: claiming is ``get_next_task(claim=true)`` (one tool to find or take work),
creating one task is ``add_task`` with a list of one (one create path, all-or-nothing), and
status moves only through ``update_task_status`` (the state machine has one door; ``update_task``
edits the other fields, so the two never overlap).

Leases: a claimed task is leased to its agent, and the tracker hands it back to the queue when the
lease lapses. ``heartbeat_task`` extends it. It is a tool of its own, not a parameter: it changes
nothing but the lease, and folding it into ``update_task_status`` ("the same status again extends
your lease") would be a rule the model could learn only from prose. It answers with a four-field
``Lease`` rather than the whole task, which keeps its cost in ``tools/list`` small. The holder
check, on the other hand, is a parameter (``agent`` on ``update_task_status``): it guards the same
move, it is not a new one.

The claim stays a parameter of ``get_next_task`` rather than a tool of its own: a ``claim_next_task``
would repeat the project, the agent and the whole ``Task`` output schema (about 1,000 characters of
``tools/list``) to save two parameters. The price is that ``get_next_task`` is not read-only, so
plan modes ask before running it; a read-only surface (``--read-only``) lists its read-only twin
instead, the same tool without ``claim`` and ``agent``, marked ``readOnlyHint``.
"""

from typing import Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field

from .. import paging
from ..client import TrackerClient
from ..models import AddedTasks, Deleted, Lease, NextTask, Task, TaskPage, TaskState, compact_schema
from .common import (
    CREATE,
    OVERWRITE,
    READ,
    UPDATE,
    AnyOf,
    Assignee,
    Catalogue,
    Cursor,
    DependsOn,
    Description,
    DueDate,
    Filter,
    HandoffRef,
    Inputs,
    Limit,
    Notes,
    Outputs,
    Parent,
    Priority,
    ProjectId,
    Tags,
    TaskRef,
    TaskStatus,
    Title,
    hints,
)

TOOLSET = "tasks"
StatusFilter = str  # "a,b" for either (guidance.CONVENTIONS)


# One task to create (no docstring: it would be published as the schema's description).
class NewTask(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=compact_schema)

    project_id: ProjectId
    task_id: str | None = Field(None, description="Default: the next TASK-NNN.")
    title: Annotated[Title, Field(description="Default: description's line 1.")] = None
    description: Description = None
    priority: Priority | None = Field(None, description="Default medium.")
    status: str | None = Field(None, description="Default pending.")
    assigned_to: Assignee = None
    tags: list[str] | None = None
    notes: Notes = None
    inputs: Inputs = None
    outputs: Outputs = None
    due_date: DueDate = None
    depends_on: DependsOn = None
    related_handoff_id: HandoffRef = None
    parent: Parent = None
    requires_review: bool | None = Field(None, description="Done only after another key approves.")


def register(tools: Catalogue, client: TrackerClient) -> None:
    _register_work(tools, client)
    _register_records(tools, client)


def _register_work(tools: Catalogue, client: TrackerClient) -> None:
    """Taking and finishing work: the claim, status moves (reviews too), leases."""

    @tools.tool(TOOLSET, hints())
    def get_next_task(
        project_id: ProjectId,
        status_filter: StatusFilter = "pending",
        claim: bool = False,
        agent: str | None = None,
    ) -> NextTask:
        """The highest-priority ready task of a project; claim=true takes it for agent, atomically."""
        if not claim:
            return client.next_task(project_id, status_filter, agent)
        if not agent:
            raise ToolError("agent is required when claim=true: pass your agent name, e.g. agent='cc'")
        return client.claim_next(project_id, agent)

    @tools.tool(TOOLSET, READ, twin="get_next_task")
    def get_next_task_read(project_id: ProjectId, status_filter: StatusFilter = "pending") -> NextTask:
        """The highest-priority ready task of a project."""
        return client.next_task(project_id, status_filter)

    @tools.tool(TOOLSET, UPDATE)
    def update_task_status(
        task_id: TaskRef,
        status: Annotated[TaskStatus, Field(description="done = completed.")],
        completion_notes: str | None = None,
        result: Any = None,
        agent: str | None = None,
        review_notes: str | None = None,
    ) -> TaskState:
        """Move a task's status. One that requires review goes in_review on done, until another agent
        sets completed or in_progress with review_notes, the verdict."""
        return TaskState.of(client.set_status(task_id, status, completion_notes, result, None, agent, review_notes))

    @tools.tool(TOOLSET, UPDATE)
    def heartbeat_task(
        task_id: TaskRef,
        agent: Annotated[str, Field(min_length=1)],
        lease_seconds: Annotated[int | None, Field(ge=10, le=86_400)] = None,
    ) -> Lease:
        """Extend your lease on a task you hold; a lapsed lease requeues the task."""
        return client.heartbeat(task_id, agent, lease_seconds, None)


def _register_records(tools: Catalogue, client: TrackerClient) -> None:
    """Tasks as records: create, list, read, edit, delete, and the task resource."""

    @tools.tool(TOOLSET, CREATE)
    def add_task(
        tasks: Annotated[list[NewTask], Field(min_length=1, max_length=200)],
    ) -> AddedTasks:
        """Create tasks, all or none; returns their keys in order."""
        return client.add_tasks([t.model_dump(exclude_none=True) for t in tasks])

    @tools.tool(TOOLSET, READ)
    def list_tasks(
        project_id: Filter = None,
        status: AnyOf = None,
        assigned_to: Filter = None,
        priority: AnyOf = None,
        tag: Filter = None,
        parent: Annotated[str | None, Field(description="Its children.")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> TaskPage:
        """Task summaries, filtered; get_task has the rest."""
        offset, query, _ = paging.resume(
            cursor,
            project=project_id,
            status=status,
            assigned_to=assigned_to,
            priority=priority,
            tag=tag,
            parent=parent,
        )
        listing = client.list_tasks(limit, offset, **query)
        items, next_cursor = paging.cut(listing.items, offset, listing.more, query)
        return TaskPage(tasks=items, total=listing.total, next_cursor=next_cursor)

    @tools.tool(TOOLSET, READ)
    def get_task(task_id: TaskRef) -> Task:
        """One task with every field."""
        return client.get_task(task_id, None)

    @tools.tool(TOOLSET, OVERWRITE)
    def update_task(
        task_id: TaskRef,
        title: Title = None,
        description: Description = None,
        priority: Priority | None = None,
        assigned_to: Assignee = None,
        tags: Tags = None,
        notes: Notes = None,
        inputs: Inputs = None,
        outputs: Outputs = None,
        due_date: DueDate = None,
        depends_on: DependsOn = None,
        related_handoff_id: HandoffRef = None,
        parent: Parent = None,
    ) -> TaskState:
        """Set the given fields of a task (status: update_task_status)."""
        changes = {
            "title": title,
            "description": description,
            "priority": priority,
            "assigned_to": assigned_to,
            "tags": tags,
            "notes": notes,
            "inputs": inputs,
            "outputs": outputs,
            "due_date": due_date,
            "depends_on": depends_on,
            "related_handoff_id": related_handoff_id,
            "parent": parent,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            raise ToolError("Nothing to update: pass at least one field to change.")
        return TaskState.of(client.update_task(task_id, changes, None))

    @tools.tool(TOOLSET, OVERWRITE)
    def delete_task(task_id: TaskRef) -> Deleted:
        """Delete a task for good; status cancelled keeps its history."""
        client.delete_task(task_id, None)
        return Deleted(task_id=task_id)

    @tools.resource(TOOLSET, "tracker://tasks/{ref}", mime_type="application/json", description="A task, as JSON.")
    def task_resource(ref: str) -> str:
        return client.get_task(ref).model_dump_json(exclude_none=True)
