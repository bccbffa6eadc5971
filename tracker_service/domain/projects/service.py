"""Project settings: stored per tenant and project; a project without a row has the defaults."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import project_settings
from tracker_service.domain.events.service import record
from tracker_service.domain.keys.service import Principal
from tracker_service.domain.projects.schemas import ProjectSettingsIn, ProjectSettingsOut

ps = project_settings


async def review_defaults(conn: AsyncConnection, tenant: str, projects: set[str]) -> dict[str, bool]:
    """Whether new tasks of each project require review (absent: they do not)."""
    rows = await conn.execute(
        select(ps.c.project, ps.c.requires_review).where(ps.c.tenant == tenant, ps.c.project.in_(sorted(projects)))
    )
    return {r.project: r.requires_review for r in rows}


class ProjectService:
    def __init__(self, conn: AsyncConnection, principal: Principal) -> None:
        self.conn = conn
        self.principal = principal

    async def settings(self, project: str) -> ProjectSettingsOut:
        row = (
            await self.conn.execute(select(ps).where(ps.c.tenant == self.principal.tenant, ps.c.project == project))
        ).first()
        if row is None:
            return ProjectSettingsOut(project=project, requires_review=False, reviewers=[], updated_at=None)
        return _out(row)

    async def update(self, project: str, data: ProjectSettingsIn) -> ProjectSettingsOut:
        given: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
        stmt = pg_insert(ps).values(tenant=self.principal.tenant, project=project, **given)
        row = (
            await self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant", "project"], set_={**given, "updated_at": func.now()}
                ).returning(ps)
            )
        ).one()
        out = _out(row)
        reviewers = ", ".join(out.reviewers) or "any key but the worker's"
        await record(
            self.conn,
            self.principal.tenant,
            "project.settings",
            f"Project {project}: requires_review={str(out.requires_review).lower()}, reviewers: {reviewers}",
            project=project,
            entity_id=project,
            actor=self.principal.name,
        )
        return out


def _out(row: Any) -> ProjectSettingsOut:
    return ProjectSettingsOut(
        project=row.project,
        requires_review=row.requires_review,
        reviewers=list(row.reviewers),
        updated_at=row.updated_at,
    )
