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
``Lease`` rather than the whole task, which keeps its cost in ``tools/list`` to about 1,000
characters. The holder check, on the other hand, is a parameter (``agent`` on
``update_task_status``): it guards the same move, it is not a new one.
"""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field

from ..client import TrackerClient
from ..models import AddedTasks, Deleted, Lease, NextTask, Task, TaskPage, compact_schema
from .common import (
    CREATE,
    OVERWRITE,
    READ,
    UPDATE,
    Assignee,
    DependsOn,
    Description,
    DueDate,
    HandoffRef,
    Inputs,
    KeyProject,
    Limit,
    Notes,
    Offset,
    Outputs,
    Parent,
    Priority,
    ProjectFilter,
    ProjectId,
    Tags,
    TaskRef,
    TaskStatus,
    Title,
    hints,
    tool,
)


class NewTask(BaseModel):
    """One task to create."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=compact_schema)

    project_id: ProjectId
    task_id: str | None = Field(None, description="Key, e.g. 'TASK-046'; omit for the next TASK-NNN.")
    title: Annotated[Title, Field(description="Defaults to the first line of description.")] = None
    description: Description = None
    priority: Priority | None = Field(None, description="Default medium.")
    status: TaskStatus | None = Field(None, description="Default pending.")
    assigned_to: Assignee = None
    tags: Tags = None
    notes: Notes = None
    inputs: Inputs = None
    outputs: Outputs = None
    due_date: DueDate = None
    depends_on: DependsOn = None
    related_handoff_id: HandoffRef = None
    parent: Parent = None
    requires_review: bool | None = Field(None, description="Done only after another key approves it.")


def register(server: MCPServer, client: TrackerClient) -> None:
    _register_work(server, client)
    _register_records(server, client)


def _register_work(server: MCPServer, client: TrackerClient) -> None:
    """Taking and finishing work: the claim, status moves (reviews too), leases."""

    @tool(server, hints())
    def get_next_task(
        project_id: ProjectId,
        status_filter: Annotated[TaskStatus, Field(description="Status to look for.")] = "pending",
        claim: Annotated[bool, Field(description="Atomically take the task for agent.")] = False,
        agent: Annotated[str | None, Field(description="Your agent name; required with claim.")] = None,
    ) -> NextTask:
        """Return the highest-priority ready task of a project, or task=null when none matches.

        Without claim nothing changes. With claim=true the next pending task is taken atomically
        for agent (status in_progress, assigned_to agent), so two agents never get the same task.
        """
        if not claim:
            return client.next_task(project_id, status_filter, agent)
        if not agent:
            raise ToolError("agent is required when claim=true: pass your agent name, e.g. agent='cc'")
        return client.claim_next(project_id, agent)

    @tool(server, UPDATE)
    def update_task_status(
        task_id: TaskRef,
        status: Annotated[TaskStatus, Field(description="New status; done = completed.")],
        completion_notes: Annotated[str, Field(description="What was done, or why it failed.")] = "",
        result: Annotated[Any, Field(description="Result to store with the task (any JSON).")] = None,
        project_id: KeyProject = None,
        agent: Annotated[str | None, Field(description="You; refused if another agent holds the task.")] = None,
        review_notes: Annotated[str | None, Field(description="Reviewer's notes with a verdict.")] = None,
    ) -> Task:
        """Move a task to a new status and return the updated task.

        Moves follow the tracker's state machine; an impossible one fails with
        "Invalid status transition: <why>", an unknown task with "Task not found: <id>".
        A task with requires_review goes in_review when done; another agent or person then approves
        it (completed) or asks for changes (in_progress or pending), with review_notes.
        """
        return client.set_status(task_id, status, completion_notes, result, project_id, agent, review_notes)

    @tool(server, UPDATE)
    def heartbeat_task(
        task_id: TaskRef,
        agent: Annotated[str, Field(min_length=1, description="You, the agent holding the task.")],
        lease_seconds: Annotated[int | None, Field(ge=10, le=86_400, description="Lease from now.")] = None,
        project_id: KeyProject = None,
    ) -> Lease:
        """Extend the lease of a task you claimed (default: the tracker's, usually 15 min); a lapsed lease requeues it.

        Fails if the task is no longer in_progress or another agent holds it: then stop working on it.
        """
        return client.heartbeat(task_id, agent, lease_seconds, project_id)


def _register_records(server: MCPServer, client: TrackerClient) -> None:
    """Tasks as records: create, list, read, edit, delete, and the task resource."""

    @tool(server, CREATE)
    def add_task(
        tasks: Annotated[list[NewTask], Field(min_length=1, max_length=200, description="Tasks to create.")],
    ) -> AddedTasks:
        """Create tasks in one all-or-nothing batch (a list of one for a single task).

        Returns the new keys in input order.
        """
        return client.add_tasks([t.model_dump(exclude_none=True) for t in tasks])

    @tool(server, READ)
    def list_tasks(
        project_id: ProjectFilter = None,
        status: Annotated[TaskStatus | None, Field(description="Only tasks in this status.")] = None,
        assigned_to: Annotated[str | None, Field(description="Only tasks of this assignee.")] = None,
        priority: Annotated[Priority | None, Field(description="Only tasks of this priority.")] = None,
        tag: Annotated[str | None, Field(description="Only tasks with this tag.")] = None,
        parent: Annotated[str | None, Field(description="Only children of this task.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> TaskPage:
        """List task summaries (no descriptions), filtered and paged. get_task has the details."""
        return client.list_tasks(
            limit,
            offset,
            project=project_id,
            status=status,
            assigned_to=assigned_to,
            priority=priority,
            tag=tag,
            parent=parent,
        )

    @tool(server, READ)
    def get_task(task_id: TaskRef, project_id: KeyProject = None) -> Task:
        """Return one task with every field: description, notes, inputs, outputs, dependencies, result,
        parent and children counts."""
        return client.get_task(task_id, project_id)

    @tool(server, OVERWRITE)
    def update_task(
        task_id: TaskRef,
        project_id: KeyProject = None,
        title: Title = None,
        description: Description = None,
        priority: Annotated[Priority | None, Field(description="New priority.")] = None,
        assigned_to: Assignee = None,
        tags: Tags = None,
        notes: Notes = None,
        inputs: Inputs = None,
        outputs: Outputs = None,
        due_date: DueDate = None,
        depends_on: DependsOn = None,
        related_handoff_id: HandoffRef = None,
        parent: Parent = None,
    ) -> Task:
        """Change the given fields of a task (omitted ones stay). Use update_task_status for status."""
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
        return client.update_task(task_id, changes, project_id)

    @tool(server, OVERWRITE)
    def delete_task(task_id: TaskRef, project_id: KeyProject = None) -> Deleted:
        """Delete a task for good. To keep its history, set status cancelled instead."""
        client.delete_task(task_id, project_id)
        return Deleted(task_id=task_id)

    @server.resource("tracker://tasks/{ref}", mime_type="application/json", description="A task, as JSON.")
    def task_resource(ref: str) -> str:
        return client.get_task(ref).model_dump_json(exclude_none=True)
