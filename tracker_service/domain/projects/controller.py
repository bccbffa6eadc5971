from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter

from tracker_service.domain.common import ProjectName
from tracker_service.domain.projects.schemas import ProjectSettingsIn, ProjectSettingsOut
from tracker_service.domain.projects.service import ProjectService
from tracker_service.web.deps import parse_project, provide_projects
from tracker_service.web.params import documented_as

ProjectPath = Annotated[str, PathParameter(description="Project name", schema_extra=documented_as(ProjectName))]


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]
    dependencies = {"project_service": Provide(provide_projects, sync_to_thread=False)}

    @get("/{project:str}/settings")
    async def project_settings(
        self, project_service: NamedDependency[ProjectService], project: ProjectPath
    ) -> ProjectSettingsOut:
        """Whether new tasks of the project require review, and who may review."""
        return await project_service.settings(parse_project(project))

    @put("/{project:str}/settings", opt={"role": "admin"})
    async def update_project_settings(
        self, project_service: NamedDependency[ProjectService], project: ProjectPath, data: JSONBody[ProjectSettingsIn]
    ) -> ProjectSettingsOut:
        """Admin: set the project's review defaults (fields left out keep their values)."""
        return await project_service.update(parse_project(project), data)
