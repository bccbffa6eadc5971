from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

from tracker_service.domain.tasks.schemas import (
    BatchIn,
    BatchOut,
    ClaimIn,
    HeartbeatIn,
    NextTaskOut,
    StatusIn,
    StatusOut,
    TaskIn,
    TaskOut,
    TaskPage,
    TaskPatch,
)
from tracker_service.domain.tasks.service import TaskService
from tracker_service.domain.tasks.states import PRIORITIES, STATUSES
from tracker_service.errors import InvalidRequest
from tracker_service.idempotency import REPLAYED
from tracker_service.web.deps import one_of, page_limit, provide_tasks
from tracker_service.web.params import (
    AUTOCOMMIT_WITH_KEY_RECORD,
    NO_NUL_PATTERN,
    TRANSACTION_WITH_KEY_RECORD,
    Limit,
    Offset,
    ProjectIdQuery,
    ProjectQuery,
    RefProject,
    TaskRefPath,
    TextQuery,
    alternatives,
    choices_query,
)

DONE = {"done": "completed"}
StatusFilter = Annotated[str | None, choices_query((*STATUSES, *DONE), "Status, or several comma-separated")]
PriorityFilter = Annotated[str | None, choices_query(PRIORITIES, "Priority")]
ParentQuery = Annotated[
    str | None, QueryParameter(description="Only children of this task (key or UUID)", max_length=64)
]
SearchQuery = Annotated[
    str | None,
    QueryParameter(
        description="Only tasks whose title or key contains this text (any case)",
        max_length=200,
        pattern=NO_NUL_PATTERN,
    ),
]
Cascade = Annotated[bool, QueryParameter(description="Also delete the task's children, and theirs")]


class TaskController(Controller):
    path = "/tasks"
    tags = ["tasks"]
    dependencies = {"task_service": Provide(provide_tasks, sync_to_thread=False)}

    @post("/")
    async def create_task(self, task_service: NamedDependency[TaskService], data: JSONBody[TaskIn]) -> TaskOut:
        """Create a task; its key comes from the ID registry (type TASK) unless given."""
        return await task_service.create(data)

    @get("/")
    async def list_tasks(
        self,
        request: Request,
        task_service: NamedDependency[TaskService],
        project: ProjectQuery = None,
        project_id: ProjectIdQuery = None,
        status: StatusFilter = None,
        assigned_to: TextQuery = None,
        priority: PriorityFilter = None,
        tag: TextQuery = None,
        parent: ParentQuery = None,
        q: SearchQuery = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> TaskPage:
        """List task summaries, highest priority first, then oldest; `parent` lists a task's children."""
        priorities = one_of("priority", priority, PRIORITIES)
        return await task_service.page(
            project=project or project_id,
            statuses=one_of("status", status, STATUSES, DONE),
            assigned_to=assigned_to,
            priority=priorities,
            tag=tag,
            parent=parent,
            search=q,
            limit=page_limit(request, limit),
            offset=offset,
        )

    @post("/batch")
    async def add_tasks(self, task_service: NamedDependency[TaskService], data: JSONBody[BatchIn]) -> BatchOut:
        """Create several tasks at once: all of them or none."""
        return await task_service.create_batch(data.tasks)

    @get("/next", opt=alternatives("project", "project_id"))
    async def peek_next_task(
        self,
        task_service: NamedDependency[TaskService],
        project: ProjectQuery = None,
        project_id: ProjectIdQuery = None,
        status: StatusFilter = "pending",
        agent: TextQuery = None,
    ) -> NextTaskOut:
        """The task a claim would take now: highest priority, then oldest, dependencies completed. Reads only."""
        statuses = one_of("status", status, STATUSES, DONE) or ["pending"]
        return await task_service.peek_next(_required(project or project_id), statuses[0], agent)

    # One statement, in autocommit, with its Idempotency-Key's record when there is one (web.params).
    @post("/next", status_code=200, opt=AUTOCOMMIT_WITH_KEY_RECORD)
    async def claim_next_task(
        self, task_service: NamedDependency[TaskService], data: JSONBody[ClaimIn]
    ) -> Response[NextTaskOut]:
        """Atomically take the next ready task for an agent (in_progress, leased); null when none is left."""
        claimed = await task_service.claim_next(data)
        return Response(claimed.answer, status_code=200, headers=REPLAYED if claimed.replayed else None)

    @get("/{ref:str}")
    async def get_task(
        self, task_service: NamedDependency[TaskService], ref: TaskRefPath, project: RefProject = None
    ) -> TaskOut:
        """One task by UUID or key."""
        return await task_service.get(ref, project)

    @patch("/{ref:str}")
    async def update_task(
        self,
        task_service: NamedDependency[TaskService],
        ref: TaskRefPath,
        data: JSONBody[TaskPatch],
        project: RefProject = None,
    ) -> TaskOut:
        """Change fields of a task; a status change follows the state machine."""
        return await task_service.patch(ref, project, data)

    # In a transaction (parents may complete with it), whose first statement records the key (web.params).
    @put("/{ref:str}/status", opt=TRANSACTION_WITH_KEY_RECORD)
    async def update_task_status(
        self,
        task_service: NamedDependency[TaskService],
        ref: TaskRefPath,
        data: JSONBody[StatusIn],
        project: RefProject = None,
    ) -> Response[StatusOut]:
        """Move a task to a new status; completing it sets completed_at."""
        changed = await task_service.set_status(ref, project, data)
        return Response(StatusOut(updated_task=changed.answer), headers=REPLAYED if changed.replayed else None)

    @post("/{ref:str}/heartbeat", status_code=200)
    async def heartbeat_task(
        self,
        task_service: NamedDependency[TaskService],
        ref: TaskRefPath,
        data: JSONBody[HeartbeatIn],
        project: RefProject = None,
    ) -> TaskOut:
        """Extend the lease of a task you hold (in_progress and assigned to `agent`)."""
        return await task_service.heartbeat(ref, project, data)

    @delete("/{ref:str}")
    async def delete_task(
        self,
        task_service: NamedDependency[TaskService],
        ref: TaskRefPath,
        project: RefProject = None,
        cascade: Cascade = False,
    ) -> None:
        """Delete a task (tasks that depended on it lose that dependency); one with children only with cascade."""
        await task_service.delete(ref, project, cascade)


def _required(project: str | None) -> str:
    if not project:
        raise InvalidRequest(
            "project is required (query parameter project or project_id)",
            errors=[{"field": "project", "message": "required", "source": "query"}],
        )
    return project
