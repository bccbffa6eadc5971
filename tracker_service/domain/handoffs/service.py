"""Handoff rules: forward-only status, replies within one tenant, expiry archives."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import handoffs
from tracker_service.domain.events.service import record
from tracker_service.domain.handoffs.schemas import (
    DIRECTIONS,
    HANDOFF_STATUSES,
    HandoffIn,
    HandoffOut,
    HandoffPage,
    HandoffSummary,
    ThreadOut,
    direction_of,
)
from tracker_service.domain.keys.service import Principal
from tracker_service.errors import HandoffNotFound, InvalidRequest, InvalidTransition
from tracker_service.settings import Settings

_first_line = func.left(func.split_part(func.ltrim(handoffs.c.content, "# \n\r\t"), "\n", 1), 120)
SUMMARY_COLUMNS = [
    *(handoffs.c[n] for n in ("id", "project", "task", "from_agent", "to_agent", "status", "response_to")),
    *(handoffs.c[n] for n in ("expires_at", "created_at", "updated_at")),
    _first_line.label("summary"),
    func.length(handoffs.c.content).label("size"),
]
FULL_COLUMNS = [c for c in handoffs.c if c.name != "tenant"]

_THREAD = text(
    """
    WITH RECURSIVE up(id, response_to, depth) AS (
        SELECT id, response_to, 0 FROM handoffs WHERE id = :id AND tenant = :tenant
        UNION ALL
        SELECT h.id, h.response_to, up.depth + 1 FROM handoffs h JOIN up ON h.id = up.response_to
        WHERE h.tenant = :tenant AND up.depth < 1000
    ), root AS (
        SELECT id FROM up ORDER BY depth DESC LIMIT 1
    ), down(id, depth) AS (
        SELECT id, 0 FROM root
        UNION ALL
        SELECT h.id, down.depth + 1 FROM handoffs h JOIN down ON h.response_to = down.id
        WHERE h.tenant = :tenant AND down.depth < 1000
    )
    SELECT id FROM down
    """
)

_SWEEP = text(
    """
    WITH expired AS (
        UPDATE handoffs SET status = 'archived', updated_at = now()
        WHERE status <> 'archived' AND expires_at < now()
        RETURNING id, tenant, project, task
    )
    INSERT INTO events (tenant, project, type, entity_id, actor, summary)
    SELECT tenant, project, 'handoff.expired', id::text, 'tracker', 'Handoff expired and archived: ' || task
    FROM expired
    RETURNING entity_id
    """
)


async def archive_expired(conn: AsyncConnection) -> int:
    """Archive every handoff past its expiry, logging each (used by the periodic sweep)."""
    return len((await conn.execute(_SWEEP)).all())


async def public_content(conn: AsyncConnection, handoff_id: UUID) -> str | None:
    """The markdown of an unexpired handoff, whatever its tenant (the UUID is the capability)."""
    return (
        await conn.execute(
            select(handoffs.c.content).where(
                handoffs.c.id == handoff_id, or_(handoffs.c.expires_at.is_(None), handoffs.c.expires_at > func.now())
            )
        )
    ).scalar_one_or_none()


class HandoffService:
    def __init__(self, conn: AsyncConnection, principal: Principal, settings: Settings) -> None:
        self.conn = conn
        self.principal = principal
        self.settings = settings
        self.tenant = principal.tenant

    async def create(self, data: HandoffIn) -> HandoffOut:
        if data.response_to is not None and not await self._exists(data.response_to):
            raise InvalidRequest(
                f"response_to: handoff {data.response_to} not found",
                errors=[{"field": "response_to", "message": "no such handoff"}],
            )
        values = data.model_dump(exclude={"direction", "expires_in_seconds"}, exclude_none=True)
        if data.expires_in_seconds is not None:
            values["expires_at"] = func.now() + timedelta(seconds=data.expires_in_seconds)
        row = (
            await self.conn.execute(
                handoffs.insert().values(tenant=self.tenant, status="pending", **values).returning(*FULL_COLUMNS)
            )
        ).one()
        out = self._out(row)
        summary = f"{out.from_agent} → {out.to_agent}: {out.task}"
        await self._event(out.project, "handoff.created", summary, out.id)
        return out

    async def get(self, handoff_id: UUID) -> HandoffOut:
        row = (
            await self.conn.execute(
                select(*FULL_COLUMNS).where(handoffs.c.id == handoff_id, handoffs.c.tenant == self.tenant)
            )
        ).first()
        if row is None:
            raise HandoffNotFound(f"handoff {handoff_id} not found")
        return self._out(row)

    async def list(
        self,
        *,
        project: str | None,
        statuses: list[str],
        directions: list[str],
        to_agent: str | None,
        from_agent: str | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> HandoffPage:
        cond = [handoffs.c.tenant == self.tenant]
        if project is not None:
            cond.append(handoffs.c.project == project)
        if statuses:
            cond.append(handoffs.c.status.in_(statuses))
        if directions:  # any of these
            pairs = [DIRECTIONS[d] for d in directions]
            cond.append(or_(*(and_(handoffs.c.from_agent == s, handoffs.c.to_agent == r) for s, r in pairs)))
        if to_agent is not None:
            cond.append(handoffs.c.to_agent == to_agent)
        if from_agent is not None:
            cond.append(handoffs.c.from_agent == from_agent)
        if since is not None:
            cond.append(handoffs.c.created_at >= since)
        total = (await self.conn.execute(select(func.count()).select_from(handoffs).where(*cond))).scalar_one()
        rows = await self.conn.execute(
            select(*SUMMARY_COLUMNS)
            .where(*cond)
            .order_by(handoffs.c.created_at.desc(), handoffs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [
            HandoffSummary.model_validate({**r._mapping, "direction": direction_of(r.from_agent, r.to_agent)})
            for r in rows
        ]
        return HandoffPage(handoffs=items, total=total, has_more=offset + len(items) < total)

    async def set_status(self, handoff_id: UUID, status: str) -> HandoffOut:
        current = (
            await self.conn.execute(
                select(handoffs.c.status, handoffs.c.project, handoffs.c.task)
                .where(handoffs.c.id == handoff_id, handoffs.c.tenant == self.tenant)
                .with_for_update()
            )
        ).first()
        if current is None:
            raise HandoffNotFound(f"handoff {handoff_id} not found")
        if current.status == status:
            return await self.get(handoff_id)
        if HANDOFF_STATUSES.index(status) < HANDOFF_STATUSES.index(current.status):
            later = HANDOFF_STATUSES[HANDOFF_STATUSES.index(current.status) + 1 :]
            raise InvalidTransition(
                f"handoff {handoff_id} is {current.status}; status only moves forward "
                f"(pending -> read -> processed -> archived), so it can become: {', '.join(later) or 'nothing'}",
                current_status=current.status,
                requested_status=status,
            )
        row = (
            await self.conn.execute(
                update(handoffs)
                .where(handoffs.c.id == handoff_id)
                .values(status=status, updated_at=func.now())
                .returning(*FULL_COLUMNS)
            )
        ).one()
        await self._event(
            current.project, "handoff.status", f"Handoff {current.task}: {current.status} → {status}", handoff_id
        )
        return self._out(row)

    async def thread(self, handoff_id: UUID) -> ThreadOut:
        ids = [r.id for r in await self.conn.execute(_THREAD, {"id": handoff_id, "tenant": self.tenant})]
        if not ids:
            raise HandoffNotFound(f"handoff {handoff_id} not found")
        rows = await self.conn.execute(
            select(*FULL_COLUMNS)
            .where(handoffs.c.id.in_(ids), handoffs.c.tenant == self.tenant)
            .order_by(handoffs.c.created_at, handoffs.c.id)
        )
        return ThreadOut(handoffs=[self._out(r) for r in rows])

    async def _exists(self, handoff_id: UUID) -> bool:
        found = await self.conn.execute(
            select(handoffs.c.id).where(handoffs.c.id == handoff_id, handoffs.c.tenant == self.tenant)
        )
        return found.first() is not None

    def _out(self, row: Any) -> HandoffOut:
        data = dict(row._mapping)
        data["direction"] = direction_of(data["from_agent"], data["to_agent"])
        if self.settings.public_content:
            data["public_url"] = f"{self.settings.base_url}/handoffs/{data['id']}/content"
        return HandoffOut.model_validate(data)

    async def _event(self, project: str, type_: str, summary: str, entity_id: object) -> None:
        await record(
            self.conn, self.tenant, type_, summary, project=project, entity_id=entity_id, actor=self.principal.name
        )
