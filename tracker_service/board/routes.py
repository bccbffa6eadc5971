"""The board: HTML pages for the people who run the agents, served by the tracker itself.

Pages are rendered here from the domain's own services, under the same RequestContext as the
API (a session cookie stands for an API key, see domain.keys.sessions). The board writes only
through the REST API, from static/board.js with the session's CSRF token, so every change it
makes follows the API's rules and shows the API's errors. Live updates: board.js follows
/events and reloads the changed parts of the page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import PathParameter
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from markupsafe import Markup

from tracker_service.board import views
from tracker_service.board.markdown import render_markdown
from tracker_service.domain.events.service import EVENT_AREAS, EVENT_TYPES, EventLog, check_event_type
from tracker_service.domain.handoffs.schemas import HANDOFF_STATUSES
from tracker_service.domain.handoffs.service import HandoffService
from tracker_service.domain.ids.service import IdRegistry
from tracker_service.domain.keys.service import authenticate
from tracker_service.domain.keys.sessions import (
    SESSION_COOKIE,
    close_session,
    from_own_origin,
    open_session,
    session_token_from,
)
from tracker_service.domain.tasks.queries import TaskFilter
from tracker_service.domain.tasks.service import TaskService
from tracker_service.domain.tasks.states import PRIORITIES, STATUSES, TRANSITIONS, VERDICTS
from tracker_service.errors import InvalidRequest, RateLimited, TrackerError, Unauthorized
from tracker_service.web.deps import just_one, one_of, parse_project, parse_uuid
from tracker_service.web.problems import tracker_error

HERE = Path(__file__).parent
# A path segment, checked by the page itself (parse_project, the task lookup, parse_uuid).
PathText = Annotated[str, PathParameter()]
CARDS_PER_COLUMN = 20
RESERVATION_STATUSES = ("active", "lapsed", "committed", "released")
# No inline script or style, nothing from elsewhere, never in a frame.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
BOARD_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the sign-in post.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["markdown"] = lambda text: Markup(render_markdown(text))  # noqa: S704 (escaped by markdown-it)
templates.globals.update(STATUSES=STATUSES, PRIORITIES=PRIORITIES, EVENT_TYPES=EVENT_TYPES)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _with_query(query: dict[str, str], name: str, value: object) -> str:
    """The page's URL query with one parameter changed (paging links keep the filters)."""
    return "?" + urlencode({**query, name: str(value)})


templates.filters["when"] = _when
# A name placed in a URL path: project names are free text ("a/b", "p?x", "../..").
templates.filters["segment"] = lambda value: quote(str(value), safe="")
templates.globals["with_query"] = _with_query
templates.filters["pretty_json"] = lambda value: _pretty(value)
templates.filters["iso"] = lambda value: "" if value is None else value.astimezone(UTC).isoformat()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response[str]:
    state = request.scope.get("state", {})
    principal = state.get("principal")
    html = templates.get_template(template).render(
        me=principal,
        can_write=principal is not None and principal.allows("write"),
        csrf=state.get("board_csrf", ""),
        path=request.url.path,
        **context,
    )
    return Response(html, media_type=MediaType.HTML, status_code=status_code, headers=BOARD_HEADERS)


def board_error(request: Request, exc: TrackerError) -> Response[Any]:
    """A page that cannot be shown: sign in again, or the problem in a page; writes (board.js)
    get the API's problem+json."""
    if request.method != "GET":
        return tracker_error(request, exc)
    if isinstance(exc, Unauthorized):
        return Redirect("/board/signin", status_code=303, headers=BOARD_HEADERS)
    return render(request, "error.html", status_code=exc.status, title=exc.title, error=exc)


def _services(request: Request) -> tuple[Any, Any, Any]:
    state = request.scope["state"]
    return state["conn"], state["principal"], request.app.state.settings


def _tasks(request: Request) -> TaskService:
    conn, principal, settings = _services(request)
    return TaskService(conn, principal, settings)


def _text_filter(request: Request, name: str) -> str | None:
    value = (request.query_params.get(name) or "").strip()
    if len(value) > 200 or "\x00" in value:
        raise _bad_filter(name, "must be at most 200 characters, without NUL")
    return value or None


def _offset(request: Request, name: str) -> int:
    raw = request.query_params.get(name) or "0"
    if not raw.isdigit() or int(raw) > 1_000_000:
        raise _bad_filter(name, "must be a whole number from 0 to 1000000")
    return int(raw)


def _bad_filter(name: str, message: str) -> TrackerError:
    return InvalidRequest(f"{name}: {message}", errors=[{"field": name, "message": message, "source": "query"}])


async def _with_extras(request: Request, items: list[Any]) -> list[dict[str, Any]]:
    """Task summaries with what a card shows besides: lease, review gate, unfinished dependencies."""
    extras = await views.card_extras(request.scope["state"]["conn"], [t.id for t in items])
    return _cards(items, extras)


def _cards(items: list[Any], extras: dict[Any, Any]) -> list[dict[str, Any]]:
    cards = []
    for t in items:
        extra = extras.get(t.id)
        cards.append(
            {
                "task": t,
                "lease_expires_at": extra.lease_expires_at if extra else None,
                "requires_review": extra.requires_review if extra else False,
                "blocked_by": list(extra.blocked_by) if extra else [],
            }
        )
    return cards


def _moves(status: str) -> list[dict[str, str]]:
    """The buttons a task page offers: the state machine's moves from `status`, verdicts named."""
    moves = []
    for target in STATUSES:
        if target not in TRANSITIONS[status]:
            continue
        if status == "in_review" and target in VERDICTS:
            label = "Approve" if target == "completed" else f"Request changes ({target})"
        else:
            label = f"→ {target}"
        moves.append({"status": target, "label": label})
    return moves


class BoardController(Controller):
    path = "/board"
    include_in_schema = False
    opt = {"board_page": True}
    exception_handlers = {TrackerError: board_error}

    @get("/")
    async def overview(self, request: Request) -> Response[str]:
        conn, principal, _ = _services(request)
        service = _tasks(request)
        held = await service.page(
            project=None, statuses=["in_progress"], assigned_to=None, priority=None, tag=None, limit=200, offset=0
        )
        review = await service.page(
            project=None, statuses=["in_review"], assigned_to=None, priority=None, tag=None, limit=1, offset=0
        )
        by_agent: dict[str, list[dict[str, Any]]] = {}
        for card in await _with_extras(request, held.tasks):
            by_agent.setdefault(card["task"].assigned_to or "(unassigned)", []).append(card)
        return render(
            request,
            "overview.html",
            title="Projects",
            totals=await views.project_totals(conn, principal.tenant),
            parents=await views.open_parents(conn, principal.tenant, None),
            by_agent=dict(sorted(by_agent.items())),
            held_total=held.total,
            review_total=review.total,
        )

    @get("/projects/{project:path}")  # path: a project name may hold a slash (sent as %2F)
    async def project_board(self, request: Request, project: PathText) -> Response[str]:
        project = parse_project(project.removeprefix("/"))
        chosen = one_of("status", request.query_params.get("status"), STATUSES) or list(STATUSES)
        filters = {name: _text_filter(request, name) for name in ("assignee", "tag", "q")}
        offsets = {status: _offset(request, f"{status}_offset") for status in chosen}
        found = TaskFilter(
            project=project,
            statuses=chosen,
            assigned_to=filters["assignee"],
            tag=filters["tag"],
            search=filters["q"],
        )
        pages = await _tasks(request).columns(found, offsets, CARDS_PER_COLUMN)
        conn, principal, _ = _services(request)
        extras = await views.card_extras(conn, [t.id for page in pages.values() for t in page.tasks])
        columns = [
            {
                "status": status,
                "total": page.total,
                "offset": offsets[status],
                "has_more": page.has_more,
                "cards": _cards(page.tasks, extras),
            }
            for status, page in pages.items()
        ]
        return render(
            request,
            "project.html",
            title=project,
            project=project,
            columns=columns,
            filters=filters,
            chosen=chosen,
            query=dict(request.query_params),
            page_size=CARDS_PER_COLUMN,
            parents=await views.open_parents(conn, principal.tenant, project),
        )

    @get("/tasks/{ref:str}")
    async def task_page(self, request: Request, ref: PathText) -> Response[str]:
        conn, principal, _ = _services(request)
        service = _tasks(request)
        task = await service.get(ref)
        children = await service.page(
            project=task.project,
            statuses=[],
            assigned_to=None,
            priority=None,
            tag=None,
            parent=str(task.id),
            limit=200,
            offset=0,
        )
        return render(
            request,
            "task.html",
            title=f"{task.key} {task.title}",
            task=task,
            children=children,
            dependents=await views.dependents(conn, task.id),
            history=await EventLog(conn, principal.tenant).entries(None, None, None, 100, entity_id=str(task.id)),
            moves=_moves(task.status),
            result_json=None if task.result is None else _pretty(task.result),
        )

    @get("/review")
    async def review_queue(self, request: Request) -> Response[str]:
        offset = _offset(request, "offset")
        page = await _tasks(request).page(
            project=None,
            statuses=["in_review"],
            assigned_to=None,
            priority=None,
            tag=None,
            limit=50,
            offset=offset,
        )
        full = [await _tasks(request).get(str(t.id)) for t in page.tasks]
        return render(request, "review.html", title="Review queue", page=page, tasks=full, offset=offset)

    @get("/handoffs")
    async def handoffs(self, request: Request) -> Response[str]:
        conn, principal, settings = _services(request)
        directions = one_of("direction", request.query_params.get("direction"), ("cc_to_ai", "ai_to_cc"))
        statuses = one_of("status", request.query_params.get("status"), HANDOFF_STATUSES)
        agent = _text_filter(request, "agent")
        offset = _offset(request, "offset")
        page = await HandoffService(conn, principal, settings).list(
            project=None,
            statuses=statuses,
            directions=directions,
            to_agent=agent,
            from_agent=None,
            since=None,
            limit=50,
            offset=offset,
        )
        return render(
            request,
            "handoffs.html",
            title="Handoffs",
            page=page,
            offset=offset,
            query=dict(request.query_params),
            statuses=HANDOFF_STATUSES,
        )

    @get("/handoffs/{handoff_id:str}")
    async def handoff_thread(self, request: Request, handoff_id: PathText) -> Response[str]:
        conn, principal, settings = _services(request)
        thread = await HandoffService(conn, principal, settings).thread(parse_uuid("handoff_id", handoff_id))
        last = thread.handoffs[-1]
        return render(request, "thread.html", title=f"Handoff {last.task}", thread=thread.handoffs, last=last)

    @get("/activity")
    async def activity(self, request: Request) -> Response[str]:
        conn, principal, _ = _services(request)
        project = request.query_params.get("project") or None
        if project is not None:
            project = parse_project(project)
        type_ = check_event_type(request.query_params.get("type") or None)
        entries = await EventLog(conn, principal.tenant).entries(project, type_, None, 100)
        return render(
            request,
            "activity.html",
            title="Activity",
            entries=entries,
            query=dict(request.query_params),
            types=[*EVENT_AREAS, *EVENT_TYPES],
        )

    @get("/ids")
    async def id_registry(self, request: Request) -> Response[str]:
        conn, principal, _ = _services(request)
        registry = IdRegistry(conn, principal)
        status = just_one("status", one_of("status", request.query_params.get("status"), RESERVATION_STATUSES))
        reservations = await registry.list_reservations(None, None, status, 100, 0)
        return render(
            request,
            "ids.html",
            title="ID registry",
            counters=await registry.counters(None),
            reservations=reservations,
            status=status,
        )

    @post("/signout", status_code=204, opt={"role": "read"})
    async def sign_out(self, request: Request) -> Response[None]:
        token = session_token_from(request.headers.get("cookie"))
        if token is not None:
            await close_session(request.scope["state"]["conn"], token)
        response: Response[None] = Response(None, status_code=204, headers=BOARD_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def same_origin(request: Request) -> bool:
    """A sign-in form posted from this tracker's own page (or by a client that sends no Origin)."""
    origin = request.headers.get("origin")
    return origin is None or from_own_origin(origin, request.headers.get("host"))


class SignInController(Controller):
    """Sign-in needs no session yet: these two routes skip RequestContext (opt public)."""

    path = "/board/signin"
    include_in_schema = False
    opt = {"public": True}

    @get("/")
    async def sign_in_form(self, request: Request) -> Response[str]:
        return render(request, "signin.html", title="Sign in", error=None)

    @post("/", status_code=303)
    async def sign_in(self, request: Request) -> Response[Any]:
        app_state = request.app.state
        address = (request.client.host if request.client else "unknown") or "unknown"
        if not same_origin(request):
            return render(
                request, "signin.html", status_code=403, title="Sign in", error="sign in from the board's own page"
            )
        form = await request.form()
        key = str(form.get("key") or "").strip()
        try:
            app_state.failed_auth.refuse_if_empty(address)
        except RateLimited as exc:
            return render(request, "signin.html", status_code=429, title="Sign in", error=exc.detail)
        async with app_state.engine.begin() as conn:
            principal = await authenticate(conn, key) if key else None
            if principal is None:
                try:
                    app_state.failed_auth.check(address)
                except RateLimited as exc:
                    return render(request, "signin.html", status_code=429, title="Sign in", error=exc.detail)
                return render(request, "signin.html", status_code=401, title="Sign in", error="invalid or revoked key")
            hours = app_state.settings.board_session_hours
            token = await open_session(conn, principal, timedelta(hours=hours))
        response: Redirect = Redirect("/board", status_code=303, headers=BOARD_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            path="/",
            max_age=hours * 3600,
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )
        return response


static_files = create_static_files_router(
    path="/board/static",
    directories=[HERE / "static"],
    opt={"public": True},
    include_in_schema=False,
    name="board_static",
)

BOARD_HANDLERS: list[ControllerRouterHandler] = [BoardController, SignInController, static_files]
