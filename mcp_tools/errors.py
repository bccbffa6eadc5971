"""The bridge's error tree and the one place HTTP failures become agent-readable messages.

Every error is both a ``ToolError`` (a tool call answers ``isError: true`` with the message)
and a ``ResourceError`` (a resource read answers a JSON-RPC error with it), so the agent reads
the same text whichever surface hit the failure.
"""

from __future__ import annotations

from typing import Any

import requests
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError


class TrackerError(ToolError, ResourceError):
    """A failure talking to the tracker, with a message written for the agent."""


class Unavailable(TrackerError):
    """The tracker could not be reached."""


class Timeout(TrackerError):
    """The tracker did not answer in time."""


class ApiError(TrackerError):
    """The tracker answered with an error status."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotFound(ApiError, ResourceNotFoundError):
    """The task (or other object) does not exist for this key's tenant."""


class InvalidTransition(ApiError):
    """The requested status is not reachable from the current one."""


class Unauthorized(ApiError):
    """The API key was refused."""


def unavailable(base_url: str) -> Unavailable:
    return Unavailable(f"Task Tracking microservice unavailable: Connection refused at {base_url}")


def timed_out(seconds: float, write: bool = False) -> Timeout:
    message = f"Task Tracking microservice timeout: No response within {seconds:g} seconds"
    if write:  # the tracker may have applied it: a blind repeat could do it twice
        message += "; the change may still have been applied, so check before repeating it"
    return Timeout(message)


def error_from_response(resp: requests.Response, subject: str | None = None) -> ApiError:
    """Translate a >= 400 answer (RFC 9457 problem+json when the tracker sent it).

    ``subject`` is the task reference the caller asked about, used for "Task not found: <id>".
    """
    problem = _problem(resp)
    status = resp.status_code
    code = problem.get("code")
    detail = str(problem.get("detail") or problem.get("title") or resp.reason or "").strip()
    if status == 401:
        return Unauthorized("Task Tracking API error: 401 - Unauthorized", status, code)
    if status == 404 and code == "TASK_NOT_FOUND" and subject:
        return NotFound(f"Task not found: {subject}", status, code)
    if code == "AMBIGUOUS_KEY" and problem.get("candidates"):
        # The tools name a task by key or UUID only: the UUID is how to pick one.
        return ApiError(
            f"Task Tracking API error: {status} - {subject or 'the key'} names tasks in several projects; "
            f"pass the UUID of the one you mean as task_id{_extras(problem, resp)}",
            status,
            code,
        )
    if code == "INVALID_TRANSITION":
        return InvalidTransition(f"Invalid status transition: {detail}", status, code)
    if code == "TIMEOUT" and problem.get("task_id"):
        # A sync delegation that outlived its wait: the work is queued, not lost. The tracker's
        # detail names a REST path; the agent needs the tool that reads the same thing.
        task_id = problem["task_id"]
        return ApiError(
            f"Delegated task {task_id} did not finish in time and stays queued "
            f"(status {problem.get('task_status') or 'unknown'}); read its status and result later with "
            f"get_task(task_id='{task_id}'), or delegate with a longer options.timeout",
            status,
            code,
        )
    message = f"Task Tracking API error: {status} - {detail}{_extras(problem, resp)}"
    if status == 404:
        return NotFound(message, status, code)
    return ApiError(message, status, code)


def _problem(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()[:300]
        return {"detail": text} if text else {}
    return body if isinstance(body, dict) else {}


def _extras(problem: dict[str, Any], resp: requests.Response) -> str:
    """Validation errors, key candidates and Retry-After, when the tracker gave them."""
    parts: list[str] = []
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        fields = [f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
        parts.append("invalid fields: " + "; ".join(fields))
    candidates = problem.get("candidates")
    if isinstance(candidates, list) and candidates:
        parts.append("candidates: " + ", ".join(_candidate(c) for c in candidates))
    if retry_after := resp.headers.get("Retry-After"):
        parts.append(f"retry after {retry_after} s")
    return "".join(f" ({part})" for part in parts)


def _candidate(candidate: Any) -> str:
    if not isinstance(candidate, dict):
        return str(candidate)
    return f"{candidate.get('id')} (project {candidate.get('project')})"
