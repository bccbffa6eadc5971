"""One stderr line per tool call: time, tool, parameters, HTTP status, duration.

Parameters are logged as compact JSON, long strings cut. Free text and free JSON (``FREE_FIELDS``)
are logged by their size only, at any depth (``add_task``'s ``tasks[].description`` too): people
paste tokens and passwords into task descriptions and handoffs, and a log line is read by more
people, and kept longer, than the tracker's rows. The client records each HTTP outcome with
``record()``; ``logged()`` wraps a tool so the line carries the statuses of the requests that call
made. Nothing here writes to stdout.
"""

import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger("mcp_tools.calls")

P = ParamSpec("P")
R = TypeVar("R")

MAX_VALUE_CHARS = 80
MAX_LINE_ARGS_CHARS = 600
#: Fields whose value is whatever the caller wrote (text, or any JSON): logged as ``"<N chars>"``.
FREE_FIELDS = frozenset(
    {
        "content",
        "description",
        "prompt",
        "completion_notes",
        "notes",
        "review_notes",
        "result",
        "inputs",
        "outputs",
        "metadata",
        "options",
    }
)

_outcomes: ContextVar[list[str] | None] = ContextVar("tracker_http_outcomes", default=None)


def configure(level: int = logging.INFO) -> None:
    """Send the package's logs, and the SDK's, to stderr as plain lines (before the server starts)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx2 logs each request at INFO; the revocation watch's own lines say what its requests did.
    logging.getLogger("httpx2").setLevel(max(level, logging.WARNING))


def record(outcome: int | str) -> None:
    """Note one HTTP outcome (a status code, or ``refused``/``timeout``) for the current tool call."""
    outcomes = _outcomes.get()
    if outcomes is not None:
        outcomes.append(str(outcome))


def logged(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a sync tool function so each call is logged once, success or failure."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        outcomes: list[str] = []
        token = _outcomes.set(outcomes)
        started = time.perf_counter()
        failure = ""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            failure = f" error={type(exc).__name__}"
            raise
        finally:
            _outcomes.reset(token)
            log.info(
                "tool=%s args=%s http=%s duration_ms=%.1f%s",
                fn.__name__,
                summarize(kwargs),
                ",".join(outcomes) or "-",
                (time.perf_counter() - started) * 1000,
                failure,
            )

    return wrapper


def summarize(arguments: dict[str, Any]) -> str:
    """Arguments as compact JSON, free text by size and long strings cut, so the log never floods."""
    text = _compact(_loggable(arguments))
    return text if len(text) <= MAX_LINE_ARGS_CHARS else text[: MAX_LINE_ARGS_CHARS - 1] + "…"


def _loggable(value: Any) -> Any:
    if isinstance(value, str):
        return (
            value if len(value) <= MAX_VALUE_CHARS else f"{value[:MAX_VALUE_CHARS]}…(+{len(value) - MAX_VALUE_CHARS})"
        )
    if isinstance(value, dict):
        return {k: _size(v) if k in FREE_FIELDS and v is not None else _loggable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_loggable(v) for v in value]
    if hasattr(value, "model_dump"):
        return _loggable(value.model_dump(exclude_none=True))
    return value


def _size(value: Any) -> str:
    """``"<N chars>"``: N counts a string's characters, or JSON's in its compact form."""
    return f"<{len(value if isinstance(value, str) else _compact(value))} chars>"


def _compact(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
