"""What POST /ids/next would cost outside Litestar's handler layer: a probe, not how the tracker serves.

    python -m bench.fastpath_probe              # 8 batches of 300 per side, in turn (~1 minute)

Issue 17 asks for ID allocations at 80% of the ceiling app's rate; one server process is one core,
so that needs the tracker's CPU per request within 1.25x the ceiling's. This probe serves the
allocation from a bare ASGI function in front of the tracker's app, doing what the route does
through Litestar, with the tracker's own parts: the key check (`identify`, cached), the strict
body parse and the model's validation, the pooled connection in autocommit, `IdRegistry.allocate`
(the statement with its activity-log row), the notification, the request id and the metrics. It
skips the error handling and the access line, so it is a lower bound. Three sides run in turn in
one process, as in bench.inprocess: the ceiling app, the tracker's app, and the probe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import time
from typing import Any

from litestar.datastructures import Headers

from bench.env import World
from bench.inprocess import in_turn, lifespan, measure_in_world
from tracker_service.db.engine import request_connection
from tracker_service.domain.ids.schemas import AllocateIn
from tracker_service.domain.ids.service import IdRegistry
from tracker_service.metrics import observe_request
from tracker_service.web.body import parse_json_body
from tracker_service.web.middleware import RateLimiter, credential_from, identify


class BareAllocate:
    """POST /ids/next without Litestar's routing, signature model, dependencies or response; every
    other request goes to the app. Happy path only."""

    def __init__(self, app: Any, pool_size: int) -> None:
        self.app = app
        self.limiter = RateLimiter(0)
        self.connections = asyncio.Semaphore(pool_size)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/ids/next":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = self.app.state
        request_id = os.urandom(16).hex()
        headers = Headers.from_scope(scope)
        body = (await receive())["body"]
        parse_json_body(scope, headers, body)
        data = AllocateIn.model_validate(json.loads(body))
        credential = credential_from(headers)
        async with self.connections, request_connection(state.engine, autocommit=True) as conn:
            principal, _ = await identify(conn, credential, state.hub.keys, state.failed_auth, scope["client"][0])
            if not principal.allows("write"):
                raise RuntimeError("the probe's key cannot write")
            self.limiter.check(principal.key_id)
            answer = await IdRegistry(conn, principal).allocate(data.project_id, data.type)
        state.hub.changed(principal.tenant)
        payload = answer.model_dump_json().encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        await send({"type": "http.response.start", "status": 201, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        observe_request("POST", "/ids/next", 201, time.perf_counter() - started)


async def _measure(world: World, batches: int, size: int) -> dict[str, float]:
    from bench.ceiling_app import create_app as ceiling_app
    from tracker_service.app import create_app
    from tracker_service.settings import Settings

    tenant, key = world.tenant_key()
    os.environ["CEILING_DSN"] = world.libpq_url
    settings = Settings.from_env(database_url=world.url, rate_limit_per_minute=0)
    tracker, behind_probe, ceiling = create_app(settings), create_app(settings), ceiling_app()
    logging.getLogger("tracker.access").setLevel(logging.WARNING)

    def body(value: dict[str, Any]) -> bytes:
        return json.dumps(value).encode()

    sides = {
        "ceiling": (ceiling, "/allocate", body({"tenant": tenant, "project": "probe-ceiling", "type": "BENCH"})),
        "tracker": (tracker, "/ids/next", body({"type": "BENCH", "project_id": "probe-tracker"})),
        "bare": (
            BareAllocate(behind_probe, settings.pool_size),
            "/ids/next",
            body({"type": "BENCH", "project_id": "probe-bare"}),
        ),
    }
    async with lifespan(tracker), lifespan(behind_probe), lifespan(ceiling):
        cpu = await in_turn(sides, key, batches, size)
    return {side: statistics.median(values) for side, values in cpu.items()}


def main() -> None:
    medians, args = measure_in_world("python -m bench.fastpath_probe", __doc__ or "", _measure)
    ceiling = medians["ceiling"]
    print(f"CPU per POST /ids/next in process, median of {args.batches} batches of {args.size}:")
    for side, ms in medians.items():
        print(f"  {side:8s} {ms:.3f} ms  ({ms / ceiling:.2f}x the ceiling)")


if __name__ == "__main__":
    main()
