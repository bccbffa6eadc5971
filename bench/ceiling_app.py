"""The stack's ceiling for the throughput section: the smallest Litestar app that does a claim or an
ID allocation and nothing else.

POST /claim and POST /allocate run the raw-SQL floor's statements (bench.floors) on a psycopg pool in
autocommit, served by uvicorn with the tracker's settings (uvloop, httptools, no access log). No key
check, no body validation, no activity-log row, no metrics: what any Litestar service on this machine
reaches for the same work, so the tracker's gap to it is the cost of what the tracker adds.

Run: CEILING_DSN=postgresql://... python -m uvicorn bench.ceiling_app:create_app --factory --workers N
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, post
from psycopg_pool import AsyncConnectionPool

from bench import floors


def create_app() -> Litestar:
    pool = AsyncConnectionPool(
        os.environ["CEILING_DSN"], min_size=10, max_size=20, open=False, kwargs={"autocommit": True}
    )

    @post("/claim", status_code=200)
    async def claim(data: dict[str, Any]) -> dict[str, Any]:
        async with pool.connection() as conn:
            row = await (await conn.execute(floors.CLAIM, data, prepare=True)).fetchone()
        return {"task": {"id": str(row[0])} if row else None}

    @post("/allocate", status_code=201)
    async def allocate(data: dict[str, Any]) -> dict[str, Any]:
        async with pool.connection() as conn:
            row = await (await conn.execute(floors.ALLOCATE, data, prepare=True)).fetchone()
        return {"number": row[0]}

    # Hooks that take a parameter are given the app: pool.close(app) would take it for its timeout.
    async def open_pool() -> None:
        await pool.open(wait=True)

    async def close_pool() -> None:
        await pool.close()

    return Litestar([claim, allocate], on_startup=[open_pool], on_shutdown=[close_pool])
