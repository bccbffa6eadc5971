from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

from tracker_service.domain.conversations.schemas import (
    AppendedOut,
    ConversationIn,
    ConversationOut,
    ConversationPage,
    MessageIn,
    MessagesIn,
)
from tracker_service.domain.conversations.service import ConversationService
from tracker_service.web.deps import page_limit, parse_uuid
from tracker_service.web.params import Limit, Offset, uuid_path

ConversationId = Annotated[str, uuid_path("The conversation's id")]
After = Annotated[int, QueryParameter(ge=0, le=2_147_483_647, description="Messages after this seq (default 0)")]


def provide_conversations(request: Request) -> ConversationService:
    state = request.scope["state"]
    return ConversationService(state["conn"], state["principal"])


class ConversationController(Controller):
    path = "/conversations"
    tags = ["conversations"]
    dependencies = {"conversations": Provide(provide_conversations, sync_to_thread=False)}

    @post("/")
    async def create_conversation(
        self, conversations: NamedDependency[ConversationService], data: JSONBody[ConversationIn]
    ) -> ConversationOut:
        """Start a conversation (seed 003's chat log); messages are appended to it."""
        return await conversations.create(data)

    @get("/")
    async def list_conversations(
        self,
        request: Request,
        conversations: NamedDependency[ConversationService],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ConversationPage:
        """Conversation summaries, newest first."""
        return await conversations.page(page_limit(request, limit), offset)

    @get("/{conversation_id:str}")
    async def get_conversation(
        self,
        request: Request,
        conversations: NamedDependency[ConversationService],
        conversation_id: ConversationId,
        after: After = 0,
        limit: Limit = 50,
    ) -> ConversationOut:
        """A conversation with a page of its messages, oldest first (`after` = a seq to continue)."""
        return await conversations.get(
            parse_uuid("conversation_id", conversation_id), after, page_limit(request, limit)
        )

    @post("/{conversation_id:str}/messages")
    async def append_message(
        self,
        conversations: NamedDependency[ConversationService],
        conversation_id: ConversationId,
        data: JSONBody[MessageIn],
    ) -> AppendedOut:
        """Append a message; it gets the next seq. Send an Idempotency-Key so a retried turn is stored once."""
        return await conversations.append(parse_uuid("conversation_id", conversation_id), [data])

    @post("/{conversation_id:str}/messages/batch")
    async def append_messages(
        self,
        conversations: NamedDependency[ConversationService],
        conversation_id: ConversationId,
        data: JSONBody[MessagesIn],
    ) -> AppendedOut:
        """Append up to 100 messages in order, all or none; they get consecutive seqs."""
        return await conversations.append(parse_uuid("conversation_id", conversation_id), data.messages)

    @delete("/{conversation_id:str}")
    async def delete_conversation(
        self, conversations: NamedDependency[ConversationService], conversation_id: ConversationId
    ) -> None:
        """Delete a conversation and its messages; tasks it led to keep existing."""
        await conversations.delete(parse_uuid("conversation_id", conversation_id))
