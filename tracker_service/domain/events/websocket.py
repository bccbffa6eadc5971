"""GET /ws: the tenant's events over a WebSocket, as /events sends them over SSE (seed 004).

Authentication as for every route: `Authorization: Bearer <key>` or `X-API-Key` on the upgrade
request, or the board's session cookie from the tracker's own pages (Origin checked, since
browsers send cookies on cross-site WebSocket upgrades that SameSite does not cover everywhere).
Query: `project` to follow one project, `after=TXID.ID` (a `position` sent before) to resume
without a gap, `names=seed004` for seed 004's event names (`task_started`, `task_completed`...).

Frames, all JSON text: `{"type": "connected", "position"}` first; then each event,
`{"type", "event", "position", "timestamp", "project", "summary", "id", "actor", "task_id"}`;
`{"type": "ping"}` after a quiet while (answer is optional), `{"type": "pong"}` to a client's
`{"type": "ping"}`. Revoking the key (or ending the board session) closes the socket with code
4401 after a `revoked` frame; too many streams for the key, or failed key checks, 4429.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from litestar import WebSocket, websocket
from litestar.datastructures import Headers
from litestar.exceptions import WebSocketDisconnect

from tracker_service.domain.events.service import entry
from tracker_service.domain.events.stream import follow, position, resume_position, start_position
from tracker_service.domain.keys.service import KeyRevoked, Principal
from tracker_service.domain.keys.sessions import from_own_origin
from tracker_service.errors import InvalidRequest, RateLimited, TrackerError, Unauthorized
from tracker_service.web.deps import parse_project
from tracker_service.web.middleware import credential_from, identify

CLOSE_UNAUTHORIZED = 4401  # 4000-4999: the application's own codes; 401's meaning
CLOSE_INVALID = 4400
CLOSE_RATE_LIMITED = 4429

# Seed 004's names for the tracker's events (its dashboard's `switch (event.type)`). A status change
# is named by the status it reached; events with no seed 004 name keep the tracker's.
SEED_004: dict[str, str] = {
    "task.created": "task_created",
    "task.claimed": "task_started",
    "task.approved": "task_completed",
    "task.review_requested": "task_review_requested",
    "task.changes_requested": "task_changes_requested",
    "task.lease_expired": "task_released",
    "task.deleted": "task_deleted",
}
SEED_004_STATUS: dict[str, str] = {
    "in_progress": "task_started",
    "completed": "task_completed",
    "failed": "task_failed",
    "cancelled": "task_cancelled",
    "blocked": "task_blocked",
    "pending": "task_pending",
    "in_review": "task_review_requested",
}


def seed004_name(row: Any) -> str:
    if row.type == "task.status" and row.status in SEED_004_STATUS:
        return SEED_004_STATUS[row.status]
    return SEED_004.get(row.type, row.type)


def frame(row: Any, seed004: bool) -> dict[str, Any]:
    data = entry(row)
    data["timestamp"] = data["timestamp"].isoformat()
    data["event"] = row.type
    data["type"] = seed004_name(row) if seed004 else row.type
    data["position"] = position(row)
    if row.type.startswith("task."):
        data["task_id"] = row.entity_id  # seed 004's field name for the task
    return data


@websocket("/ws")  # authenticated here: RequestContext serves HTTP only
async def events_socket(socket: WebSocket) -> None:
    """The tenant's events as JSON frames, resumable with `after`; seed 004 names with `names=seed004`."""
    await socket.accept()
    try:
        principal = await _authenticate(socket)
        project = socket.query_params.get("project") or None
        if project is not None:
            project = parse_project(project)
        names = socket.query_params.get("names") or "tracker"
        if names not in ("tracker", "seed004"):
            raise InvalidRequest(f"names: {names!r} is not one of tracker, seed004")
        engine = socket.app.state.engine
        resume = await resume_position(engine, socket.query_params.get("after"))
        release = socket.app.state.stream_slots.take(principal)
    except Unauthorized as exc:
        await _close(socket, CLOSE_UNAUTHORIZED, exc)
        return
    except RateLimited as exc:
        await _close(socket, CLOSE_RATE_LIMITED, exc)
        return
    except TrackerError as exc:
        await _close(socket, CLOSE_INVALID, exc)
        return
    try:
        await _serve(socket, principal, project, names == "seed004", resume)
    finally:
        release()


async def _serve(
    socket: WebSocket, principal: Principal, project: str | None, seed004: bool, resume: tuple[str, int] | None
) -> None:
    engine, hub = socket.app.state.engine, socket.app.state.hub
    with hub.subscribe(principal.tenant) as sub:
        start = resume or await start_position(engine)
        await socket.send_json({"type": "connected", "position": f"{start[0]}.{start[1]}"})
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_answer_pings, socket, tasks.cancel_scope)
            try:
                async for row in follow(engine, sub, hub, principal, project, start):
                    await socket.send_json({"type": "ping"} if row is None else frame(row, seed004))
            except KeyRevoked as exc:
                await socket.send_json({"type": "revoked", "code": exc.code, "detail": exc.detail})
                await socket.close(code=CLOSE_UNAUTHORIZED, reason="API key revoked")
            except WebSocketDisconnect:
                pass
            tasks.cancel_scope.cancel()


async def _answer_pings(socket: WebSocket, scope: anyio.CancelScope) -> None:
    """Read what the client sends: a ping gets a pong; a disconnect ends the socket's work."""
    try:
        while True:
            text = await socket.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                await socket.send_json({"type": "pong"})
    except WebSocketDisconnect:
        scope.cancel()


async def _authenticate(socket: WebSocket) -> Principal:
    headers = Headers.from_scope(socket.scope)
    credential = credential_from(headers)
    if credential.session_token is not None and not from_own_origin(headers.get("origin"), headers.get("host")):
        raise Unauthorized("a board session may open /ws only from the tracker's own pages")
    state = socket.app.state
    address = socket.client.host if socket.client else "unknown"
    async with state.engine.connect() as conn:
        principal, _ = await identify(conn, credential, state.hub.keys, state.failed_auth, address, state.jwt_users)
    return principal


async def _close(socket: WebSocket, code: int, exc: TrackerError) -> None:
    await socket.send_json({"type": "error", "code": exc.code, "detail": exc.detail})
    await socket.close(code=code, reason=exc.code)
