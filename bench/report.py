"""Results JSON -> markdown tables (what `python -m bench` prints and BENCHMARKS.md quotes)."""

# Markdown table rows are long by nature; splitting them would only hide their shape.
# ruff: noqa: E501

from __future__ import annotations

from typing import Any


def _ms(v: float | None) -> str:
    return "–" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}")


def _x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}x"


def _yes(v: bool) -> str:
    return "yes" if v else "**no**"


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        f"## Results of `{r['command'].strip()}` ({r['mode']}), {r['started_utc']}",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"PostgreSQL {m.get('postgres', '?')} (embedded, fsync on), commit {m['commit']}. "
        f"Load average before each section: "
        + ", ".join(f"{k.removesuffix(' (before)')} {v[0]}" for k, v in r["load_average"].items())
        + ".",
        "",
    ]
    renderers = {
        "e2e": _e2e,
        "throughput": _throughput,
        "scaling": _scaling,
        "startup": _startup,
        "profile": _profile,
        "board": _board,
    }
    for section, render_section in renderers.items():
        if section not in r:
            continue
        if "error" in r[section]:
            out += [f"### {section}: FAILED", "", f"`{r[section]['error']}`", ""]
        else:
            out += render_section(r[section])
    return "\n".join(out) + "\n"


def _e2e(e: dict[str, Any]) -> list[str]:
    fs = e["floor_sum"]
    lines = [
        f"### 1. End to end through MCP over stdio ({e['iterations']} interleaved iterations after {e['warmup']} warm-up)",
        "",
        "| call | median ms | p95 ms | p99 ms | median / floor sum | same REST call, no MCP: median ms | goal: median <= 1.5x floors | goal: p95 < 15 ms |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, s in e["floors"].items():
        lines.append(f"| floor: {name} | {_ms(s['median'])} | {_ms(s['p95'])} | {_ms(s['p99'])} | | | | |")
    lines.append(
        f"| **sum of the three floors** | {_ms(fs['median'])} | {_ms(fs['p95'])} | {_ms(fs['p99'])} | 1.00x | | | |"
    )
    for name, s in e["tools"].items():
        lines.append(
            f"| {name} | {_ms(s['median'])} | {_ms(s['p95'])} | {_ms(s['p99'])} | {_x(s['ratio_median_to_floor_sum'])} | "
            f"{_ms(s['direct_rest']['median'])} | {_yes(s['goal_median_1_5x'])} | {_yes(s['goal_p95_15ms'])} |"
        )
    return lines + [""]


def _throughput(t: dict[str, Any]) -> list[str]:
    if "sides" not in t:  # results written before the ceiling app existed
        return [f"### 2. Throughput: results in the old format ({len(t.get('cells', []))} cells), see the JSON", ""]
    lines = [
        f"### 2. Throughput ({t['seconds_per_cell']:g} s per cell, at most {t['max_ops_per_cell']} operations; "
        f"HTTP server: {t.get('server', 'uvicorn')}"
        + (f"; median of {t['rounds']} rounds)" if t.get("rounds", 1) > 1 else ")"),
        "",
        "ops/s, and in brackets the share of the raw-SQL floor. Ceiling: the same statement behind the same",
        "server stack and nothing else (bench/ceiling_app.py). x1 / x2: server processes.",
        "",
        "| operation | clients | raw SQL floor | ceiling x1 | tracker x1 | ceiling x2 | tracker x2 | tracker / ceiling x1, x2 | tracker x2 p50 / p95 / p99 ms | double claims / duplicate IDs | goal >= 60% (x1, x2) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for c in t["cells"]:
        op = "claim (POST /tasks/next)" if c["op"] == "claim" else "allocate ID (POST /ids/next, one counter)"

        def rate(side: str, c: dict[str, Any] = c) -> str:
            r = c[side]
            share = f" ({r['ratio_to_floor'] * 100:.0f}%)" if r.get("ratio_to_floor") is not None else ""
            return f"{r['per_second']:.0f}{share}"

        checks = [c[side]["check"] for side in t["sides"]]
        if c["op"] == "claim":
            bad = sum(k["double_claims"] for k in checks)
            dup = f"{bad} of {sum(k['claimed'] for k in checks)}"
        else:
            bad = sum(k["duplicate_ids"] for k in checks)
            dup = f"{bad} of {sum(k['allocated'] for k in checks)} (gapless: {all(k['gapless'] for k in checks)})"
        t1, t2 = c["tracker x1"], c["tracker x2"]
        lat = t2["latency"]
        lines.append(
            f"| {op} | {c['clients']} | {rate('floor')} | {rate('ceiling x1')} | {rate('tracker x1')} | "
            f"{rate('ceiling x2')} | {rate('tracker x2')} | "
            f"{t1['ratio_to_ceiling'] * 100:.0f}%, {t2['ratio_to_ceiling'] * 100:.0f}% | "
            f"{_ms(lat['median'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])} | {dup} | "
            f"{_yes(t1['goal_60pct'])}, {_yes(t2['goal_60pct'])} |"
        )
    ok = all(c[side]["check"]["ok"] for c in t["cells"] for side in t["sides"])
    lines += [
        "",
        f"Correctness checks (no double claim, no duplicate or missing ID, database agrees): {'all passed' if ok else '**FAILED**'}.",
        "",
        *_throughput_costs(t),
    ]
    return lines


def _throughput_costs(t: dict[str, Any]) -> list[str]:
    """Per cell, each server's tail (p99 / p50) and CPU per operation: server processes, PostgreSQL
    (all backends), this client. At x1 the server is one process: 1 / its CPU per operation caps
    its rate."""
    servers = [side for side in t["sides"] if side != "floor"]
    if not all("cpu_ms_per_op" in c[side] for c in t["cells"] for side in servers):
        return []  # results written before CPU was measured
    lines = [
        "Tail and CPU per operation: p50 / p99 ms (p99 / p50); CPU ms per operation server + PostgreSQL (+ client).",
        "",
        f"| operation | clients | {' | '.join(servers)} |",
        f"|---|---:|{'---|' * len(servers)}",
    ]
    for c in t["cells"]:
        cells = []
        for side in servers:
            lat, cpu = c[side]["latency"], c[side]["cpu_ms_per_op"]
            cells.append(
                f"{_ms(lat['median'])} / {_ms(lat['p99'])} ({lat['p99'] / lat['median']:.1f}x); "
                f"{cpu['server']:.2f} + {cpu['postgres']:.2f} (+ {cpu['client']:.2f})"
            )
        lines.append(f"| {c['op']} | {c['clients']} | {' | '.join(cells)} |")
    return [*lines, ""]


def _scaling(s: dict[str, Any]) -> list[str]:
    ops = list(s["sizes"][0]["ops"])
    lines = [
        f"### 3. Scaling (one tenant, 10 projects, measured in project p0; tasks table {s['tasks_table_mb']:.0f} MB at the largest size)",
        "",
        "| tasks | p0: pending / in progress / completed | "
        + " | ".join(f"{op} p50 / p95 / p99 ms" for op in ops)
        + " | seed s |",
        "|---:|---|" + "---|" * len(ops) + "---:|",
    ]
    for row in s["sizes"]:
        c = row["p0_by_status"]
        cells = " | ".join(
            f"{_ms(row['ops'][op]['median'])} / {_ms(row['ops'][op]['p95'])} / {_ms(row['ops'][op]['p99'])}"
            for op in ops
        )
        lines.append(
            f"| {row['tasks']:,} | {c.get('pending', 0):,} / {c.get('in_progress', 0):,} / {c.get('completed', 0):,} | {cells} | {row['seed_seconds']:.1f} |"
        )
    g = s["growth_largest_vs_smallest"]
    lines.append(
        "| **largest / smallest median** | | "
        + " | ".join(
            f"{_x(g[op]['median_ratio'])} ({'meets' if g[op]['goal_1_5x'] else '**misses**'} 1.5x)" for op in ops
        )
        + " | |"
    )
    return lines + [""]


def _startup(s: dict[str, Any]) -> list[str]:
    lines = [
        "### 4. Start-up and memory at rest",
        "",
        "| what | runs | median s | max s | RSS MiB | PostgreSQL PSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group in ("mcp", "serve"):
        for name, row in s[group].items():
            st = row["startup"]
            rss = row.get("rss_mb")
            pg = row.get("postgres_pss_mb")
            lines.append(
                f"| {name} | {row['runs']} | {st['median'] / 1000:.2f} | {st['max'] / 1000:.2f} | "
                f"{'–' if rss is None else f'{rss:.0f}'} | {'–' if pg is None else f'{pg:.0f}'} |"
            )
    return lines + [""]


def _profile(p: dict[str, Any]) -> list[str]:
    lines = ["### Profile: where the time of a tool call goes", ""]
    for tool, r in p.items():
        cpu = r["cpu_ms_per_call"]
        lines += [
            f"**{tool}** through the real bridge, {r['calls']} calls: median {_ms(r['latency']['median'])} ms, "
            f"p95 {_ms(r['latency']['p95'])} ms; wall {_ms(r['wall_ms_per_call'])} ms per call.",
            "",
            "| process | CPU ms per call |",
            "|---|---:|",
            *[f"| {k} | {_ms(v)} |" for k, v in cpu.items()],
            f"| **sum** | {_ms(sum(cpu.values()))} |",
            "",
        ]
        spy = r.get("py_spy", {})
        if "skipped" in spy:
            lines += [f"py-spy: {spy['skipped']}", ""]
            continue
        for proc in ("tracker serve", "tracker-mcp"):
            data = spy.get(proc)
            if not data or "error" in data:
                continue
            pk = ", ".join(f"{name} {share:.0f}%" for name, share in data["self_by_package"][:6])
            lines += [
                f"py-spy, `{proc}` ({data['samples']} working samples over {spy['calls_sampled']} calls; {data['file']}): "
                f"self time by package: {pk}.",
                "",
                "| inclusive % | function |",
                "|---:|---|",
                *[f"| {share:.0f} | `{name}` |" for name, share in _interesting(data["inclusive"])[:14]],
                "",
            ]
    return lines


def _board(b: dict[str, Any]) -> list[str]:
    lines = [
        f"### 6. Board pages (project {b['project']!r}; beside it {b['neighbours']}; tasks table {b['tasks_table_mb']:.0f} MB at the largest size)",
        "",
        "Filters: " + "; ".join(f"{name}: `{q}`" for name, q in b["filters"].items() if q) + ".",
        "",
        "| tasks | page | median ms | p95 ms | p99 ms | median / API list | p95 / API list | tasks matched |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in b["sizes"]:
        for name, s in row["ops"].items():
            r = row["board_over_list"].get(name, {"median": 1.0, "p95": 1.0})
            shown = row["columns_shown"].get(name, row["columns_shown"]["board"])
            lines.append(
                f"| {row['tasks']:,} | {name} | {_ms(s['median'])} | {_ms(s['p95'])} | {_ms(s['p99'])} | "
                f"{_x(r['median'])} | {_x(r['p95'])} | {sum(shown.values()):,} |"
            )
    loads = ", ".join(f"{row['tasks']:,} tasks: {row['load_average_after'][0]}" for row in b["sizes"])
    lines += [
        "",
        f"Load average after measuring each size: {loads}.",
        "",
        f"Statements per board page at {b['sizes'][-1]['tasks']:,} tasks (recorded in process, each SELECT re-run under EXPLAIN ANALYZE):",
        "",
        "| page | statements | sum of execution times ms | slowest three (ms) |",
        "|---|---:|---:|---|",
    ]
    for name, p in b["statements_at_largest"].items():
        slow = sorted((r for r in p["rows"] if r.get("ms") is not None), key=lambda r: -r["ms"])[:3]
        top = "; ".join(f"{r['ms']:.1f}: `{' '.join(r['sql'].split())[:70]}...`" for r in slow)
        lines.append(f"| {name} | {p['statements']} | {_ms(p['explained_ms_sum'])} | {top} |")
    return lines + [""]


def _interesting(rows: list[list[Any]] | list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Skip the frames every sample shares (interpreter start, event loop, thread bootstrap)."""
    boring = (
        "<frozen runpy>",
        "threading.py:",
        "asyncio/",
        "anyio/_backends",
        "anyio/_core/_eventloop",
        "uvicorn/main.py",
        "uvicorn/server.py",
        "uvicorn/_compat.py",
        "tracker_service/__main__.py",
        "tracker_service/cli.py",
        "tracker-mcp:<module>",
        "mcp_tools/__main__.py",
        "mcp/server/mcpserver/server.py:MCPServer.run",
    )
    return [(name, share) for name, share in rows if not name.startswith(boring)]
