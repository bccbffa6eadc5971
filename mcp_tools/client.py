"""REST client of the tracker: one ``requests.Session`` per process, one ``_request`` choke point.

Every request carries ``Authorization: Bearer <key>`` and a timeout. The key is asked for on each
request, never stored on the session: over stdio it is the process's key, over streamable HTTP
the key of the client whose tool call this is, so one pooled session serves every user. Every
write carries a fresh ``Idempotency-Key`` (one per call, reused by the adapter's retries), which
is what lets ``transport.IdempotentRetryAdapter`` retry it safely. Every failure is translated
here, once, into an ``errors.TrackerError`` whose message the agent reads.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import requests
from pydantic import BaseModel, ValidationError
from urllib3.util.retry import Retry

from . import calllog
from .config import Config
from .errors import ApiError, TrackerError, error_from_response, timed_out, unavailable
from .models import (
    AddedTasks,
    AllocatedId,
    Delegation,
    Handoff,
    HandoffPage,
    HandoffReceipt,
    HandoffSummary,
    Lease,
    LogEntry,
    LogPage,
    NextTask,
    Reservation,
    Task,
    TaskPage,
    TaskSummary,
)
from .transport import IDEMPOTENCY_HEADER, WRITE_METHODS, IdempotentRetryAdapter, default_retry

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Item = TypeVar("Item")

USER_AGENT = "tracker-mcp"
DEFAULT_SYNC_WAIT = 120.0


def build_session(api_key: str | None = None, retry: Retry | None = None, pool_maxsize: int = 10) -> requests.Session:
    """The process-wide session: pooled connections, retries in the adapter.

    ``api_key`` is only a default for requests sent on the session directly (scripts, tests);
    ``TrackerClient`` never passes one, and its per-request key would win anyway. Cookies are
    refused: a cookie one user's answer set would ride along on every other user's requests over
    streamable HTTP (the tracker sets none; this keeps it that way).
    """
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if api_key:
        session.headers["Authorization"] = f"Bearer {api_key}"
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = IdempotentRetryAdapter(retry or default_retry(), pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _ref(value: str) -> str:
    return quote(value, safe="")


def _params(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class TrackerClient:
    """Typed calls to the tracker's REST API; each method is one HTTP request.

    ``api_key`` returns the key for the request being made (default: ``config.api_key``).
    """

    def __init__(
        self,
        config: Config,
        session: requests.Session | None = None,
        api_key: Callable[[], str] | None = None,
    ) -> None:
        self._base = config.base_url
        self._timeout = config.timeout
        self._session = session or build_session()
        self._api_key = api_key or _fixed_key(config.api_key)

    def close(self) -> None:
        self._session.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        subject: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return the JSON body (text for non-JSON, None when empty) or raise."""
        write = method in WRITE_METHODS
        headers = {"Authorization": f"Bearer {self._api_key()}"}
        if write:
            headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex
        wait = timeout or self._timeout
        started = time.perf_counter()
        try:
            resp = self._session.request(
                method, self._base + path, params=params, json=json, headers=headers, timeout=wait
            )
        except requests.Timeout as exc:
            calllog.record("timeout")
            raise timed_out(wait, write) from exc
        except requests.ConnectionError as exc:
            calllog.record("refused")
            raise unavailable(self._base) from exc
        except requests.RequestException as exc:
            calllog.record("error")
            raise TrackerError(f"Task Tracking microservice error: {exc}") from exc
        calllog.record(resp.status_code)
        log.debug("%s %s -> %s in %.1f ms", method, path, resp.status_code, (time.perf_counter() - started) * 1000)
        if resp.status_code >= 400:
            raise error_from_response(resp, subject)
        if not resp.content:
            return None
        if "json" not in resp.headers.get("Content-Type", ""):
            return resp.text
        try:
            return resp.json()
        except ValueError as exc:
            raise ApiError(f"Task Tracking API error: {resp.status_code} - invalid JSON", resp.status_code) from exc

    # Tasks

    def next_task(self, project: str, status: str = "pending", agent: str | None = None) -> NextTask:
        body = self._request("GET", "/tasks/next", params=_params(project=project, status=status, agent=agent))
        return _parse(NextTask, body)

    def claim_next(self, project: str, agent: str) -> NextTask:
        body = self._request("POST", "/tasks/next", json={"project": project, "agent": agent})
        return _parse(NextTask, body)

    def list_tasks(self, limit: int = 50, offset: int = 0, **filters: str | None) -> Listing[TaskSummary]:
        body = self._request("GET", "/tasks", params=_params(limit=limit, offset=offset, **filters))
        return _listing(TaskPage, body, "tasks")

    def get_task(self, ref: str, project: str | None = None) -> Task:
        body = self._request("GET", f"/tasks/{_ref(ref)}", params=_params(project=project), subject=ref)
        return _parse(Task, body)

    def add_tasks(self, tasks: list[dict[str, Any]]) -> AddedTasks:
        return _parse(AddedTasks, self._request("POST", "/tasks/batch", json={"tasks": tasks}))

    def update_task(self, ref: str, changes: dict[str, Any], project: str | None = None) -> Task:
        body = self._request("PATCH", f"/tasks/{_ref(ref)}", params=_params(project=project), json=changes, subject=ref)
        return _parse(Task, body)

    def set_status(
        self,
        ref: str,
        status: str,
        completion_notes: str | None = None,
        result: Any = None,
        project: str | None = None,
        agent: str | None = None,
        review_notes: str | None = None,
    ) -> Task:
        payload = _params(
            status=status,
            completion_notes=completion_notes or None,
            result=result,
            agent=agent,
            review_notes=review_notes,
        )
        body = self._request(
            "PUT", f"/tasks/{_ref(ref)}/status", params=_params(project=project), json=payload, subject=ref
        )
        return _parse(Task, body.get("updated_task", body))

    def heartbeat(self, ref: str, agent: str, lease_seconds: int | None = None, project: str | None = None) -> Lease:
        payload = _params(agent=agent, lease_seconds=lease_seconds)
        body = self._request(
            "POST", f"/tasks/{_ref(ref)}/heartbeat", params=_params(project=project), json=payload, subject=ref
        )
        return _parse(Lease, body)

    def delete_task(self, ref: str, project: str | None = None) -> None:
        self._request("DELETE", f"/tasks/{_ref(ref)}", params=_params(project=project), subject=ref)

    # IDs

    def allocate_id(self, artifact_type: str, project: str) -> str:
        body = self._request("POST", "/ids/next", json={"type": artifact_type, "project_id": project})
        return _parse(AllocatedId, body).next_id

    def reserve_ids(self, artifact_type: str, count: int, project: str) -> Reservation:
        payload = {"type": artifact_type, "count": count, "project_id": project}
        return _parse(Reservation, self._request("POST", "/ids/reserve", json=payload))

    # Handoffs and activity

    def create_handoff(self, handoff: dict[str, Any]) -> HandoffReceipt:
        return _parse(HandoffReceipt, self._request("POST", "/handoffs", json=handoff))

    def list_handoffs(self, limit: int = 20, offset: int = 0, **filters: str | None) -> Listing[HandoffSummary]:
        body = self._request("GET", "/handoffs", params=_params(limit=limit, offset=offset, **filters))
        return _listing(HandoffPage, body, "handoffs")

    def get_handoff(self, handoff_id: str) -> Handoff:
        return _parse(Handoff, self._request("GET", f"/handoffs/{_ref(handoff_id)}"))

    def conversation_json(self, conversation_id: str) -> str:
        """A conversation with its first page of messages, as the tracker's JSON."""
        return json.dumps(self._request("GET", f"/conversations/{_ref(conversation_id)}"), ensure_ascii=False)

    def handoff_markdown(self, handoff_id: str) -> str:
        return str(self._request("GET", f"/handoffs/{_ref(handoff_id)}/content") or "")

    def set_handoff_status(self, handoff_id: str, status: str) -> HandoffReceipt:
        body = self._request("PATCH", f"/handoffs/{_ref(handoff_id)}", json={"status": status})
        return _parse(HandoffReceipt, body)

    def log(self, limit: int = 50, **filters: str | None) -> list[LogEntry]:
        """The newest ``limit`` entries (the tracker caps it, at 200 by default), newest first."""
        return _parse(LogPage, self._request("GET", "/log", params=_params(limit=limit, **filters))).entries

    def delegate(self, request: dict[str, Any]) -> Delegation:
        """With ``sync`` the tracker answers when the work is done: wait options.timeout longer."""
        timeout = None
        if request.get("sync"):
            wait = (request.get("options") or {}).get("timeout")
            timeout = self._timeout + (wait if isinstance(wait, int | float) and wait > 0 else DEFAULT_SYNC_WAIT)
        return _parse(Delegation, self._request("POST", "/task/delegate", json=request, timeout=timeout))


def _fixed_key(key: str | None) -> Callable[[], str]:
    if not key:
        raise ValueError("TrackerClient needs config.api_key or an api_key callable")
    return lambda: key


def _parse(model: type[M], body: Any) -> M:
    """The tracker's answer as ``model``; a shape this bridge does not know is reported, not crashed on."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise TrackerError(
            f"Task Tracking API error: unexpected {model.__name__} from the tracker ({where}: {first['msg']}); "
            "tracker and tracker-mcp versions may not match"
        ) from exc


@dataclass
class Listing(Generic[Item]):
    """One page of a tracker list: its items, the total, and whether more follow."""

    items: list[Item]
    total: int | None
    more: bool


def _listing(model: type[TaskPage] | type[HandoffPage], body: Any, key: str) -> Listing[Any]:
    page = _parse(model, body)
    return Listing(getattr(page, key), page.total, bool(isinstance(body, dict) and body.get("has_more")))
