"""Cursor pagination for the list tools (and long handoffs), and the answer budget that keeps each page small.

The tracker pages with ``limit``/``offset``; a tool takes an opaque ``cursor`` instead and answers
``next_cursor`` while more remain. The cursor is the offset and the filters of the query, as
URL-safe base64 JSON: the next page is the same query, further on, whatever filters the caller
repeats or leaves out. It is not signed: a forged one can ask for nothing the filters cannot.

A page is cut to fit ``ANSWER_BUDGET`` characters of JSON (what the model reads), so no list
answers more than about 8,000 characters whatever ``limit`` says; ``next_cursor`` then continues
at the first item left out. At least one item is always returned. A handoff's markdown, the one
text that runs long by design, is read the same way: in pieces cut at a line end, with a cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

#: Characters of JSON a list answer aims to stay under (its items plus the page's own fields).
ANSWER_BUDGET = 8_000
#: What the page's own fields (total, next_cursor) and the list's brackets take at most.
PAGE_OVERHEAD = 300

M = TypeVar("M", bound=BaseModel)

BAD_CURSOR = "Invalid cursor: pass next_cursor exactly as the previous page returned it, or omit it for the first page"


def encode_cursor(offset: int, query: dict[str, Any], **extra: Any) -> str:
    state = {"o": offset, "q": {k: v for k, v in query.items() if v is not None}, **extra}
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The cursor's state, or a ToolError that says what to do."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ToolError(BAD_CURSOR) from None
    if not (
        isinstance(state, dict)
        and isinstance(state.get("o"), int)
        and state["o"] >= 0
        and isinstance(state.get("q"), dict)
    ):
        raise ToolError(BAD_CURSOR)
    return state


def resume(cursor: str | None, **query: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Where a page starts: ``(offset, filters, cursor state)``.

    Without a cursor, the first page of ``query``. With one, its offset and filters; a filter given
    again must be the same, since a cursor continues one query.
    """
    if not cursor:
        return 0, {k: v for k, v in query.items() if v is not None}, {}
    state = decode_cursor(cursor)
    kept: dict[str, Any] = state["q"]
    changed = sorted(k for k, v in query.items() if v is not None and kept.get(k) != v)
    if changed:
        raise ToolError(
            f"The cursor continues another query ({', '.join(changed)} differ): repeat the same filters "
            "or leave them out, or omit cursor to start a new list"
        )
    return state["o"], kept, state


def fit(items: Sequence[M], budget: int = ANSWER_BUDGET - PAGE_OVERHEAD) -> int:
    """How many of ``items``, from the first, fit in ``budget`` characters of JSON (at least one)."""
    used = 0
    for count, item in enumerate(items):
        used += len(item.model_dump_json()) + 1
        if used > budget and count:
            return count
    return len(items)


def cut(items: Sequence[M], offset: int, more: bool, query: dict[str, Any]) -> tuple[list[M], str | None]:
    """The items that fit, and the cursor of what follows them (None when nothing does)."""
    count = fit(items)
    if count < len(items) or more:
        return list(items[:count]), encode_cursor(offset + count, query)
    return list(items), None


def text_piece(text: str, start: int, room: int) -> str:
    """The longest piece of ``text`` from ``start`` whose JSON fits ``room`` characters, ending at a line
    end when one falls in its second half (always at least one character)."""
    end = min(len(text), start + room)
    while end > start + 1 and len(json.dumps(text[start:end], ensure_ascii=False)) > room:
        end = start + max(1, (end - start) * 9 // 10)
    if end < len(text):
        line_end = text.rfind("\n", start + (end - start) // 2, end)
        if line_end >= 0:
            end = line_end + 1
    return text[start:end]
