"""Conversations and their messages, per tenant. An append is one statement that numbers its
messages under the conversation's row lock, so concurrent appends never interleave within a batch
nor share a number, whichever tracker process serves them."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.models import conversation_messages, conversations, handoffs, tasks
from tracker_service.domain.conversations.schemas import (
    AppendedOut,
    ConversationIn,
    ConversationOut,
    ConversationPage,
    ConversationSummary,
    MessageIn,
    MessageOut,
)
from tracker_service.domain.keys.service import Principal
from tracker_service.domain.tasks.refs import resolve
from tracker_service.errors import ConversationNotFound, InvalidRequest

_APPEND = text(
    """
    WITH conv AS (
        UPDATE conversations SET message_count = message_count + :n, updated_at = now()
        WHERE id = :id AND tenant = :tenant
        RETURNING id, message_count - :n AS base
    )
    INSERT INTO conversation_messages
        (conversation_id, seq, role, content, tool_calls, metadata, task_ids, handoff_ids)
    SELECT conv.id, conv.base + m.i, m.role, m.content, m.tool_calls, m.metadata,
           coalesce(m.task_ids, '{}'), coalesce(m.handoff_ids, '{}')
    FROM conv, jsonb_to_recordset(CAST(:items AS jsonb))
        AS m(i int, role text, content text, tool_calls jsonb, metadata jsonb, task_ids uuid[], handoff_ids uuid[])
    ORDER BY m.i
    RETURNING seq, role, content, tool_calls, metadata, task_ids, handoff_ids, created_at
    """
)
_SUMMARY = [
    conversations.c.id,
    conversations.c.title,
    conversations.c.message_count,
    conversations.c.created_at,
    conversations.c.updated_at,
]


def _message(row: Any) -> MessageOut:
    return MessageOut(
        seq=row.seq,
        role=row.role,
        content=row.content,
        tool_calls=row.tool_calls,
        metadata=row.metadata,
        tasks=list(row.task_ids),
        handoffs=list(row.handoff_ids),
        created_at=row.created_at,
    )


class ConversationService:
    def __init__(self, conn: AsyncConnection, principal: Principal) -> None:
        self.conn = conn
        self.tenant = principal.tenant

    async def create(self, data: ConversationIn) -> ConversationOut:
        row = (
            await self.conn.execute(
                insert(conversations)
                .values(tenant=self.tenant, title=data.title, metadata=data.metadata)
                .returning(*_SUMMARY, conversations.c.metadata)
            )
        ).one()
        return ConversationOut(**row._mapping, messages=[], next_after=None)

    async def page(self, limit: int, offset: int) -> ConversationPage:
        mine = conversations.c.tenant == self.tenant
        total = (await self.conn.execute(select(func.count()).select_from(conversations).where(mine))).scalar_one()
        rows = await self.conn.execute(
            select(*_SUMMARY)
            .where(mine)
            .order_by(conversations.c.created_at.desc(), conversations.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [ConversationSummary.model_validate(dict(r._mapping)) for r in rows]
        return ConversationPage(conversations=items, total=total, has_more=offset + len(items) < total)

    async def get(self, conversation_id: UUID, after: int, limit: int) -> ConversationOut:
        row = (
            await self.conn.execute(
                select(*_SUMMARY, conversations.c.metadata).where(
                    conversations.c.id == conversation_id, conversations.c.tenant == self.tenant
                )
            )
        ).first()
        if row is None:
            raise ConversationNotFound(f"conversation {conversation_id} not found")
        m = conversation_messages
        rows = (
            await self.conn.execute(
                select(m).where(m.c.conversation_id == conversation_id, m.c.seq > after).order_by(m.c.seq).limit(limit)
            )
        ).all()
        messages = [_message(r) for r in rows]
        more = bool(messages) and messages[-1].seq < row.message_count
        return ConversationOut(**row._mapping, messages=messages, next_after=messages[-1].seq if more else None)

    async def append(self, conversation_id: UUID, items: list[MessageIn]) -> AppendedOut:
        linked_tasks: list[UUID] = []
        prepared = []
        for i, item in enumerate(items, start=1):
            field = f"messages.{i - 1}" if len(items) > 1 else ""
            task_ids = [
                await resolve(self.conn, self.tenant, ref, None, field=_join(field, f"tasks.{j}"))
                for j, ref in enumerate(item.tasks or [])
            ]
            await self._check_handoffs(item.handoffs or [], _join(field, "handoffs"))
            linked_tasks += task_ids
            values: dict[str, Any] = {"i": i, "role": item.role, "content": item.content}
            values.update(
                {
                    k: v
                    for k, v in {
                        "tool_calls": item.tool_calls,
                        "metadata": item.metadata,
                        "task_ids": [str(t) for t in task_ids] or None,
                        "handoff_ids": [str(h) for h in item.handoffs or []] or None,
                    }.items()
                    if v is not None
                }
            )
            prepared.append(values)
        params = {"id": conversation_id, "tenant": self.tenant, "n": len(items), "items": json.dumps(prepared)}
        rows = (await self.conn.execute(_APPEND, params)).all()
        if not rows:
            raise ConversationNotFound(f"conversation {conversation_id} not found")
        if linked_tasks:
            await self.conn.execute(
                update(tasks)
                .where(tasks.c.tenant == self.tenant, tasks.c.id.in_(linked_tasks), tasks.c.conversation_id.is_(None))
                .values(conversation_id=conversation_id)
            )
        return AppendedOut(conversation_id=conversation_id, messages=[_message(r) for r in rows])

    async def delete(self, conversation_id: UUID) -> None:
        gone = await self.conn.execute(
            delete(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.tenant == self.tenant)
            .returning(conversations.c.id)
        )
        if gone.first() is None:
            raise ConversationNotFound(f"conversation {conversation_id} not found")

    async def _check_handoffs(self, ids: list[UUID], field: str) -> None:
        if not ids:
            return
        found = set(
            (
                await self.conn.execute(
                    select(handoffs.c.id).where(handoffs.c.tenant == self.tenant, handoffs.c.id.in_(ids))
                )
            ).scalars()
        )
        missing = [str(h) for h in ids if h not in found]
        if missing:
            raise InvalidRequest(
                f"{field}: handoff {missing[0]} not found",
                errors=[{"field": field, "message": f"handoff {missing[0]} not found"}],
            )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
