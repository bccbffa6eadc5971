"""Seed 003's scale: 10,000 users from an identity provider, each with a few tasks and a conversation.

Seed 003 targets 10k+ users with p95 < 2 s per tool call. One embedded PostgreSQL and one
`tracker serve` accepting the users' JWTs (a JWKS served here, RS256); the users are seeded in SQL
(tenant `user:<sub>`, 3 tasks, the TASK counter past them, a conversation of 4 messages). Then 8
concurrent clients, each request as a user drawn at random with that user's own token, call what
the five task tools call (add_task, get_next_task with claim, update_task_status, list_tasks,
get_task) and a conversation append. Latency is the REST call as the bridge makes it (the MCP
layer's own cost is measured in the e2e section). Every answer is checked (status code).

    .venv/bin/python -m bench.users [--users N] [--samples N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.env import World
from bench.stats import summarize
from tests.identity_provider import IdentityProvider

ISSUER, AUDIENCE, PROJECT = "https://id.bench.test", "agent-tracker", "p"
OPS = ("add_task", "get_next_task (claim)", "update_task_status", "list_tasks", "get_task", "conversation append")


class Provider(IdentityProvider):
    """The test suite's identity provider, with each user's token made once."""

    def __init__(self) -> None:
        super().__init__(ISSUER, AUDIENCE)
        self.url = self.jwks_url
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def token(self, subject: str, **claims: Any) -> str:
        with self._lock:
            if subject not in self._tokens:
                self._tokens[subject] = super().token(subject, exp=int(time.time()) + 3600, **claims)
            return self._tokens[subject]


def seed_users(conn: psycopg.Connection, users: int) -> None:
    """Per user: 3 pending tasks (TASK-001..003, the counter at 3) and a conversation of 4 messages."""
    conn.execute(
        """
        INSERT INTO tasks (tenant, project, key, title, priority, status, tags)
        SELECT 'user:u' || u, %(p)s, 'TASK-00' || k, 'task ' || k || ' of u' || u, 'medium', 'pending', '{}'
        FROM generate_series(1, %(n)s) u, generate_series(1, 3) k
        """,
        {"p": PROJECT, "n": users},
    )
    conn.execute(
        """
        INSERT INTO id_counters (tenant, project, type, last_value)
        SELECT 'user:u' || u, '', 'TASK', 3 FROM generate_series(1, %(n)s) u
        """,
        {"n": users},
    )
    conn.execute(
        """
        WITH c AS (
            INSERT INTO conversations (tenant, title, message_count)
            SELECT 'user:u' || u, 'chat of u' || u, 4 FROM generate_series(1, %(n)s) u
            RETURNING id
        )
        INSERT INTO conversation_messages (conversation_id, seq, role, content)
        SELECT c.id, s, CASE WHEN s %% 2 = 1 THEN 'user' ELSE 'assistant' END, 'turn ' || s
        FROM c, generate_series(1, 4) s
        """,
        {"n": users},
    )
    conn.execute("VACUUM ANALYZE")


def conversations_of(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT tenant, id::text FROM conversations WHERE tenant LIKE 'user:u%%'").fetchall()
    return {tenant.removeprefix("user:"): cid for tenant, cid in rows}


_local = threading.local()


def one_round(base: str, provider: Provider, sub: str, conversation: str) -> dict[str, float]:
    """The six calls as one user, each timed; a wrong status fails the run. Each client thread keeps
    one warm connection, as a bridge's pooled session does, and sends each user's own token."""
    if getattr(_local, "client", None) is None:
        _local.client = httpx.Client(base_url=base, timeout=60)
    client: httpx.Client = _local.client
    auth = {"Authorization": f"Bearer {provider.token(sub)}"}
    timed: dict[str, float] = {}

    def call(name: str, method: str, path: str, expect: int, **kw: Any) -> Any:
        t = time.perf_counter()
        resp = client.request(method, path, headers=auth, **kw)
        timed[name] = time.perf_counter() - t
        if resp.status_code != expect:
            raise RuntimeError(f"{name} as {sub}: {resp.status_code} {resp.text[:200]}")
        return resp.json()

    call("add_task", "POST", "/tasks", 201, json={"project": PROJECT, "title": "from the bench"})
    claim = {"project": PROJECT, "agent": sub}
    task = call("get_next_task (claim)", "POST", "/tasks/next", 200, json=claim)["task"]
    done = {"status": "completed", "agent": sub}
    call("update_task_status", "PUT", f"/tasks/{task['id']}/status", 200, json=done)
    call("list_tasks", "GET", "/tasks", 200, params={"project": PROJECT})
    call("get_task", "GET", f"/tasks/{task['key']}", 200)
    call(
        "conversation append",
        "POST",
        f"/conversations/{conversation}/messages",
        201,
        json={"role": "user", "content": "a turn"},
    )
    return timed


def run(world: World, users: int, rounds: int, clients: int) -> dict[str, Any]:
    provider = Provider()
    tracker = world.tracker(
        "users",
        TRACKER_JWT_ISSUER=ISSUER,
        TRACKER_JWT_AUDIENCE=AUDIENCE,
        TRACKER_JWT_JWKS_URL=provider.url,
        TRACKER_RATE_LIMIT_PER_MINUTE="0",
    )
    with psycopg.connect(world.libpq_url, autocommit=True) as conn:
        t = time.perf_counter()
        seed_users(conn, users)
        seed_seconds = time.perf_counter() - t
        conversations = conversations_of(conn)
    print(f"bench: users: {users:,} users seeded in {seed_seconds:.1f} s", file=sys.stderr, flush=True)
    base = f"http://127.0.0.1:{tracker.port}"
    rng = random.Random(7)
    # Each round a user not drawn before: every user's first call finds its tenant cold.
    drawn = rng.sample(range(1, users + 1), min(users, rounds + 20))
    for sub in drawn[:20]:  # warm-up
        one_round(base, provider, f"u{sub}", conversations[f"u{sub}"])
    lat: dict[str, list[float]] = {op: [] for op in OPS}
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for timed in pool.map(lambda u: one_round(base, provider, f"u{u}", conversations[f"u{u}"]), drawn[20:]):
            for op, seconds in timed.items():
                lat[op].append(seconds)
    wall = time.perf_counter() - t
    tracker.stop()
    provider.server.shutdown()
    return {
        "users": users,
        "seed_seconds": seed_seconds,
        "rounds": len(drawn) - 20,
        "clients": clients,
        "wall_seconds": wall,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "ops": {op: summarize(v) for op, v in lat.items()},
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| call | n | median ms | p95 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for op, s in result["ops"].items():
        lines.append(f"| {op} | {s['n']} | {s['median']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['max']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1_000, help="users served, one round of six calls each")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    world = World.start()
    try:
        result = run(world, args.users, args.rounds, args.clients)
    finally:
        world.close()
    print(table(result))
    print(
        f"\n{result['rounds']} rounds by {result['clients']} clients in {result['wall_seconds']:.1f} s; "
        f"load average after {result['load_average_after']}"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
