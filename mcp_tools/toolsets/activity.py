"""The activity log (spec 000) and delegation (spec 004).

The tracker's ``/log`` answers the newest entries only (up to its list cap, 200 by default), so
``get_log`` pages within them: its cursor holds how many entries were shown and the id of the
last one, and the next page starts right after that entry even if newer ones arrived meanwhile.
"""

from typing import Annotated, Any, Literal

from pydantic import Field

from .. import paging
from ..client import DEFAULT_SYNC_WAIT, TrackerClient
from ..models import Delegation, LogPage
from .common import CREATE, READ, Catalogue, Cursor, Filter, Limit, Since

TOOLSET = "activity"
#: The tracker's default cap on one list (``list_limit_max``): how far back the log pages.
LOG_DEPTH = 200


def register(tools: Catalogue, client: TrackerClient) -> None:
    @tools.tool(TOOLSET, READ)
    def get_log(
        project_id: Filter = None,
        type: Annotated[str | None, Field(description="task, id, handoff, key, or an event: task.created.")] = None,
        since: Since = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> LogPage:
        """What changed, when, by whom: the last 200 events, newest first."""
        offset, query, state = paging.resume(cursor, project=project_id, type=type, since=since)
        entries = client.log(min(LOG_DEPTH, offset + limit + 1), **query)
        ids = [entry.event_id for entry in entries]
        last = state.get("e")
        start = ids.index(last) + 1 if last is not None and last in ids else offset
        items = entries[start : start + limit]
        count = paging.fit(items)
        more = start + count < len(entries)
        next_cursor = None
        if more and count:
            next_cursor = paging.encode_cursor(offset + count, query, e=items[count - 1].event_id)
        return LogPage(entries=items[:count], next_cursor=next_cursor)

    @tools.resource(
        TOOLSET,
        "tracker://conversations/{id}",
        mime_type="application/json",
        description="A conversation (seed 003's chat log) with its first 50 messages.",
    )
    def conversation_resource(id: str) -> str:
        return client.conversation_json(id)

    @tools.tool(TOOLSET, CREATE)
    def delegate_task(
        prompt: Annotated[str, Field(min_length=1, description="The work, self-contained.")],
        type: Literal["code", "general"] = "general",
        priority: Annotated[int, Field(ge=1, le=10, description="1 low to 10 urgent.")] = 5,
        files: list[str] | None = None,
        sync: bool = False,
        options: Annotated[
            dict[str, Any] | None, Field(description="timeout (s, default 120), project, model.")
        ] = None,
    ) -> Delegation:
        """Hand work to a worker agent; get_task(task_id) follows it; sync=true waits for the result."""
        request = {"type": type, "prompt": prompt, "priority": priority, "sync": sync, "files": files or []}
        options = dict(options or {})
        if sync:
            # Say how long to wait, so the tracker and this bridge's HTTP timeout agree.
            options.setdefault("timeout", DEFAULT_SYNC_WAIT)
        if options:
            request["options"] = options
        return client.delegate(request)
