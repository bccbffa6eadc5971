"""create_app(settings): the Litestar application."""

from __future__ import annotations

import gc
import logging
from datetime import UTC, datetime

from litestar import Litestar, Request, Router, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy import text

from tracker_service import __version__
from tracker_service.backup.store import backup_target
from tracker_service.backup.syncer import BackupSyncer, backup_status
from tracker_service.board.routes import BOARD_HANDLERS
from tracker_service.db.engine import create_engine
from tracker_service.domain.conversations.controller import ConversationController
from tracker_service.domain.delegation.controller import DelegationController
from tracker_service.domain.events.controller import LogController, live_events
from tracker_service.domain.events.stream import StreamSlots
from tracker_service.domain.events.websocket import events_socket
from tracker_service.domain.handoffs.controller import HandoffController
from tracker_service.domain.ids.controller import IdController
from tracker_service.domain.keys.controller import WhoAmIController
from tracker_service.domain.keys.jwt_users import JwtUsers
from tracker_service.domain.keys.service import PrincipalCache
from tracker_service.domain.oauth.routes import oauth_handlers, oauth_provider
from tracker_service.domain.projects.controller import ProjectController
from tracker_service.domain.tasks.controller import TaskController
from tracker_service.domain.transfer.controller import ImportController
from tracker_service.errors import DatabaseUnavailable
from tracker_service.logs import RequestLog
from tracker_service.notify import EventHub
from tracker_service.settings import Settings
from tracker_service.sweeper import Sweeper
from tracker_service.web.body import ValidateByModelConfig
from tracker_service.web.middleware import RateLimiter, RequestContext
from tracker_service.web.openapi import document_api
from tracker_service.web.options import answer_options
from tracker_service.web.problems import EXCEPTION_HANDLERS

log = logging.getLogger("tracker")


@get(["/health", "/mcp/health"], opt={"public": True}, tags=["health"], security=[])
async def health(request: Request) -> dict[str, str]:
    """Liveness and database reachability (no API key needed); 503 when the database is down."""
    settings: Settings = request.app.state.settings
    backup = None
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            if settings.backup_url:
                # Reported, not a failure of the tracker: writes go on while the store is away.
                backup = await backup_status(conn, backup_target(settings.backup_url), settings.backup_lag_seconds)
    except Exception as exc:  # any failure to reach the database means unhealthy
        raise DatabaseUnavailable(f"the database is unreachable: {type(exc).__name__}") from exc
    # timestamp: spec 004's health answer has one (the tracker's clock, UTC).
    answer = {"status": "ok", "database": "ok", "version": __version__, "timestamp": datetime.now(UTC).isoformat()}
    if backup is not None:
        answer["backup"] = backup.state
        answer["backup_lag_seconds"] = f"{backup.lag_seconds:.3f}"
    return answer


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url (`tracker serve` starts the embedded database)")
    engine = create_engine(settings.database_url, settings.pool_size)
    keys = PrincipalCache(ttl=settings.auth_cache_seconds)
    hub = EventHub(settings.database_url, keys, on_lost=engine.dispose)
    sweeper = Sweeper(engine, hub, settings.sweep_interval_seconds)
    background: list[Sweeper | BackupSyncer] = [sweeper]
    if settings.backup_url:
        background.append(_backup_syncer(settings, hub))
    extra_handlers: list = []
    if settings.metrics:
        from tracker_service.metrics import metrics

        extra_handlers.append(metrics)
    # Failed key checks per client address, shared by the API and the board's sign-in: guessing
    # keys costs a lookup each, and tells nothing.
    failed_auth = RateLimiter(settings.auth_failures_per_minute, "failed API key checks per minute from this address")
    # Users from an identity provider, when one is configured (domain.keys.jwt_users).
    jwt_users = JwtUsers(settings) if settings.jwt_issuer or settings.jwt_audience else None
    # The authorization server for MCP clients that cannot send a key (domain.oauth).
    oauth = oauth_provider(engine, settings)
    middleware = [
        RequestLog(metrics=settings.metrics),
        RequestContext(engine, settings, RateLimiter(settings.rate_limit_per_minute), hub, failed_auth, jwt_users),
    ]
    return Litestar(
        route_handlers=[
            health,
            TaskController,
            IdController,
            HandoffController,
            LogController,
            live_events,
            events_socket,
            DelegationController,
            WhoAmIController,
            ProjectController,
            ConversationController,
            ImportController,
            *BOARD_HANDLERS,
            *oauth_handlers(oauth),
            # Spec 000 clients call the same routes under /mcp/.
            Router("/mcp", route_handlers=[TaskController, HandoffController, LogController], include_in_schema=False),
            *extra_handlers,
        ],
        middleware=middleware,
        plugins=[ValidateByModelConfig()],
        logging_config=None,  # logging is set up once at the edge (tracker_service.logs)
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=answer_options,  # Allow names every method (web/options.py)
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "hub": hub,
                "failed_auth": failed_auth,
                "stream_slots": StreamSlots(settings.streams_per_key),
                "jwt_users": jwt_users,
                "oauth_provider": oauth,
            }
        ),
        on_startup=[document_api, hub.start, *(b.start for b in background)],
        on_shutdown=[*(b.stop for b in background), hub.stop, engine.dispose],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Agent Tracker",
            version=__version__,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            description="Tasks, claims with leases, sequential IDs, handoffs and delegation shared by AI agents.",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="Authorization: Bearer <key>"),
                    "apiKey": SecurityScheme(type="apiKey", security_scheme_in="header", name="X-API-Key"),
                }
            ),
            security=[{"bearer": []}, {"apiKey": []}],
        ),
    )


def _backup_syncer(settings: Settings, hub: EventHub) -> BackupSyncer:
    from tracker_service.backup.store import BackupStore

    store = BackupStore(settings.backup_url or "", settings.backup_endpoint_url)
    assert settings.database_url is not None
    return BackupSyncer(settings.database_url, store, hub, lag_threshold=settings.backup_lag_seconds)


def create_app_from_env() -> Litestar:
    """The app of one worker process of `tracker serve --workers N` (settings from TRACKER_*)."""
    from tracker_service import logs

    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    return served(create_app(settings))


def served(app: Litestar) -> Litestar:
    """The app as a server process runs it: what start-up made is left out of garbage collection.

    Imports, the routes and the OpenAPI document leave about 210,000 objects that live as long as
    the process. Python's full collection walks all of them: under load at 32 clients one took
    138 ms, during which every request waited (the tail of POST /ids/next, BENCHMARKS.md).
    gc.freeze() after start-up moves them out of the collector's sight, so a full collection walks
    only what requests made since. Not in create_app: a test process builds many apps."""
    app.on_startup.append(gc.freeze)  # last: after the OpenAPI document and the background tasks
    return app
