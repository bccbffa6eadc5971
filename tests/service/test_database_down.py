"""With the database unreachable: /health is 503 and requests get a clear problem, not a 500."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.helpers import problem
from tracker_service.app import create_app
from tracker_service.settings import Settings


def test_unreachable_database_is_503():
    app = create_app(Settings(database_url="postgresql://postgres@/tracker?host=/nonexistent-socket-dir"))
    with TestClient(app) as client:
        body = problem(client.get("/health"), 503, "DATABASE_UNAVAILABLE")
        assert "unreachable" in body["detail"]
        problem(client.get("/mcp/health"), 503, "DATABASE_UNAVAILABLE")
        resp = client.get("/tasks", headers={"X-API-Key": "trk_anything"})
        problem(resp, 503, "DATABASE_UNAVAILABLE")
        assert resp.headers["retry-after"] == "1"
