from __future__ import annotations

import hashlib
from typing import Annotated

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody

from tracker_service.domain.delegation.schemas import DelegatedStatus, DelegateIn, DelegateOut
from tracker_service.domain.delegation.service import DelegationService, status_of
from tracker_service.domain.tasks.service import TaskService
from tracker_service.web.deps import provide_tasks
from tracker_service.web.params import TaskRefPath

IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)]


class DelegationController(Controller):
    path = "/task"
    tags = ["delegation"]
    dependencies = {"task_service": Provide(provide_tasks, sync_to_thread=False)}

    @post("/delegate", status_code=200, opt={"own_connection": True})
    async def delegate_task(
        self, request: Request, data: JSONBody[DelegateIn], idempotency_key: IdempotencyKey = None
    ) -> DelegateOut:
        """Queue work for a worker of `type`; with sync=true wait (up to options.timeout) for its result."""
        state = request.app.state
        service = DelegationService(state.engine, state.hub, request.scope["state"]["principal"], state.settings)
        idempotency = None
        if idempotency_key:
            digest = hashlib.sha256(f"{request.url.path}\0{data.model_dump_json()}".encode()).hexdigest()
            idempotency = (idempotency_key, digest)
        return await service.delegate(data, idempotency)

    @get("/{ref:str}/status")
    async def delegated_status(self, task_service: NamedDependency[TaskService], ref: TaskRefPath) -> DelegatedStatus:
        """Status and result of delegated work."""
        return status_of(await task_service.get(ref))

    @delete("/{ref:str}", status_code=200)
    async def cancel_delegated(self, task_service: NamedDependency[TaskService], ref: TaskRefPath) -> DelegateOut:
        """Cancel work that has not finished; finished work is a 409."""
        task = await task_service.cancel(ref)
        return DelegateOut(task_id=task.id, status=task.status)
