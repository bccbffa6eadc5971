"""Prometheus metrics: requests by route and status (Litestar's middleware, paths grouped by
route template), plus what the tracker itself does: claims, ID allocations, lease expiries,
and the database pool."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest

# Module level on purpose: prometheus_client's registry is per process, and so are these.
CLAIMS = Counter("tracker_claims_total", "Claim attempts by outcome", ["outcome"])
IDS_ALLOCATED = Counter("tracker_ids_allocated_total", "IDs handed out, by single allocation or reservation", ["how"])
LEASE_EXPIRIES = Counter("tracker_lease_expiries_total", "Tasks returned to pending because their lease lapsed")
POOL = Gauge("tracker_db_pool_connections", "Database pool connections by state", ["state"])


def request_metrics_config() -> PrometheusConfig:
    # group_path: label by route template (/tasks/{ref}), never by raw path (unbounded labels).
    return PrometheusConfig(app_name="tracker", prefix="tracker", group_path=True, exclude=["^/metrics$"])


@get("/metrics", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request) -> Response[bytes]:
    """Prometheus text format (no key needed, like /health)."""
    pool = request.app.state.engine.pool
    POOL.labels("checked_out").set(pool.checkedout())
    POOL.labels("idle").set(pool.checkedin())
    POOL.labels("overflow").set(max(0, pool.overflow()))
    POOL.labels("size").set(pool.size())
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
