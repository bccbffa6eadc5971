"""Prometheus metrics: requests by route template and status (recorded by logs.RequestLog, which
times every request anyway), plus what the tracker itself does: claims, ID allocations, lease
expiries, and the database pool."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, get
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest

# Module level on purpose: prometheus_client's registry is per process, and so are these.
CLAIMS = Counter("tracker_claims_total", "Claim attempts by outcome", ["outcome"])
IDS_ALLOCATED = Counter("tracker_ids_allocated_total", "IDs handed out, by single allocation or reservation", ["how"])
LEASE_EXPIRIES = Counter("tracker_lease_expiries_total", "Tasks returned to pending because their lease lapsed")
POOL = Gauge("tracker_db_pool_connections", "Database pool connections by state", ["state"])
REQUESTS = Counter("tracker_requests_total", "HTTP requests by route and status", ["method", "path", "status_code"])
LATENCY = Histogram(
    "tracker_request_duration_seconds",
    "HTTP request duration by route",
    ["method", "path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# The backup syncer (tracker_service.backup): set in the process that syncs, and the lag in every one.
BACKUP_LAG = Gauge("tracker_backup_lag_seconds", "Age of the oldest change not yet in the backup store (0: none)")
BACKUP_FAILURES = Counter("tracker_backup_failures_total", "Backup passes that failed (store unreachable or refusing)")
BACKUP_OBJECTS = Counter("tracker_backup_objects_total", "Objects written to or deleted from the backup store", ["op"])
BACKUP_DELAY = Histogram(
    "tracker_backup_delay_seconds",
    "From an event's transaction to its objects being in the backup store",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
_PARAM_TYPE = re.compile(r":[a-z]+}")


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    key = (method, route, status)
    if key not in _SERIES:
        # Label by route template (/tasks/{ref}), never by raw path: raw paths are unbounded labels.
        # So the keys here are bounded too; labels() costs a lock and a lookup, and this runs on
        # every request. /metrics itself is not counted (None).
        path = _PARAM_TYPE.sub("}", route) if route else "unmatched"
        _SERIES[key] = (
            None if path == "/metrics" else (REQUESTS.labels(method, path, str(status)), LATENCY.labels(method, path))
        )
    series = _SERIES[key]
    if series is not None:
        series[0].inc()
        series[1].observe(seconds)


_SERIES: dict[tuple[str, str | None, int], tuple[Any, Any] | None] = {}


@get("/metrics", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request) -> Response[bytes]:
    """Prometheus text format (no key needed, like /health)."""
    pool = request.app.state.engine.pool
    POOL.labels("checked_out").set(pool.checkedout())
    POOL.labels("idle").set(pool.checkedin())
    POOL.labels("overflow").set(max(0, pool.overflow()))
    POOL.labels("size").set(pool.size())
    # prometheus_client's CONTENT_TYPE_LATEST has a charset already; Litestar adds one to text/* types.
    return Response(generate_latest(REGISTRY), media_type="text/plain; version=0.0.4")
