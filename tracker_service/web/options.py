"""OPTIONS answers name every method of the resource, as the OpenAPI document does.

Litestar 2 builds a path's automatic OPTIONS handler with the path's first route, and its Allow
header keeps that route's methods when more handlers join the path later (litestar#4169, fixed
in v3 only): OPTIONS /tasks said "OPTIONS, POST" although GET /tasks exists. Here the answer is
built from the app's route map, which is complete.
"""

from __future__ import annotations

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT

_AUTOMATIC = HTTPRoute.create_options_handler.__qualname__ + ".<locals>.options_handler"


async def answer_options(request: Request) -> Response | None:
    """App-wide before_request hook: answer for Litestar's automatic OPTIONS handler; any other
    request (and an OPTIONS handler a controller declares) goes on to its handler.

    A coroutine on purpose: Litestar runs a sync hook in its thread pool, so every request paid a
    thread hop for this check (a third of the server's CPU at 32 clients, and queueing for the
    pool's few threads in the latency tail: py-spy, bench.throughput).
    """
    if request.method != "OPTIONS" or request.route_handler.fn.__qualname__ != _AUTOMATIC:
        return None
    template = request.scope["path_template"]
    methods = {m for route in request.app.routes if route.path_format == template for m in route.methods}
    return Response(
        None, status_code=HTTP_204_NO_CONTENT, media_type=MediaType.TEXT, headers={"Allow": ", ".join(sorted(methods))}
    )
