"""`python -m bench`: run the benchmarks, write bench/results/<time>.json (and latest.json), print markdown.

python -m bench                      # everything, default sizes (about 6-10 minutes on 2 cores)
python -m bench --quick              # smaller sizes and counts (about 2-3 minutes)
python -m bench --only e2e,profile   # some sections: e2e, throughput, scaling, startup, profile, board
python -m bench --only throughput --server granian   # the tracker and its ceiling on granian
python -m bench --only throughput --rounds 3         # each cell three times in turn, median ratios
python -m bench.board                # the board section alone (= python -m bench --only board)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench import board, e2e, profiling, report, scaling, startup, throughput
from bench.env import World

SECTIONS = ("e2e", "throughput", "scaling", "startup", "profile", "board")
RESULTS = Path(__file__).parent / "results"

FULL = {
    "e2e": {"iterations": 300, "warmup": 20, "max_seconds": 300},
    "throughput": {"levels": [1, 8, 32], "seconds": 5.0, "max_ops": 20000},
    "scaling": {"sizes": [10_000, 100_000, 1_000_000], "samples": 200, "max_seconds_per_size": 120},
    "startup": {"repeats": 5, "fresh_repeats": 2},
    "profile": {"calls": 100, "spy_seconds": 10},
    "board": {"sizes": [10_000, 1_000_000], "samples": 100, "warmup": 5, "max_seconds_per_size": 180},
}
QUICK = {
    "e2e": {"iterations": 60, "warmup": 5, "max_seconds": 90},
    "throughput": {"levels": [1, 8, 32], "seconds": 2.0, "max_ops": 4000},
    "scaling": {"sizes": [10_000, 100_000], "samples": 50, "max_seconds_per_size": 60},
    "startup": {"repeats": 2, "fresh_repeats": 1},
    "profile": {"calls": 40, "spy_seconds": 6},
    "board": {"sizes": [10_000, 100_000], "samples": 30, "warmup": 3, "max_seconds_per_size": 60},
}


def machine() -> dict[str, Any]:
    mem = psutil.virtual_memory().total / 2**30
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "tracker_service", "mcp_tools"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit + ("+local changes in tracker_service/mcp_tools" if dirty else ""),
    }


def main(argv: list[str] | None = None, command: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and counts")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--profile-tool", help="tool to profile (default: the slowest median of the e2e section, else add_task(10))"
    )
    parser.add_argument(
        "--server",
        choices=throughput.SERVERS,
        default="uvicorn",
        help="the HTTP server of the throughput section's tracker and ceiling (granian: pip install granian)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="the throughput section: run each cell's sides this many times in turn; ratios are medians",
    )
    parser.add_argument("--out", type=Path, help="results JSON (default bench/results/<UTC time>.json)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")
    plan = QUICK if args.quick else FULL
    when = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "command": command or "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": when.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "plan": {s: plan[s] for s in only},
        "load_average": {},
        "section_seconds": {},
    }
    world = World.start()
    # This process is the load generator and the clock: a full garbage collection over what its
    # imports left (70-80 ms, seen during e2e) would land in the latencies it measures.
    gc.freeze()
    try:
        with world.engine.connect() as conn:  # type: ignore[union-attr]
            results["machine"]["postgres"] = conn.exec_driver_sql("SHOW server_version").scalar()
        for section in only:
            results["load_average"][section + " (before)"] = [round(x, 2) for x in os.getloadavg()]
            t = time.perf_counter()
            print(f"bench: {section} ...", file=sys.stderr, flush=True)
            try:
                _section(section, world, plan, args, results)
            except Exception as exc:  # one failed section must not lose the others' numbers
                results[section] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"bench: {section} FAILED: {exc}", file=sys.stderr, flush=True)
            results["section_seconds"][section] = round(time.perf_counter() - t, 1)
            print(f"bench: {section} done in {results['section_seconds'][section]} s", file=sys.stderr, flush=True)
    finally:
        world.close()
    results["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"{when:%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    (RESULTS / "latest.json").write_text(out.read_text())
    markdown = report.render(results)
    (RESULTS / "latest.md").write_text(markdown)
    print(markdown)
    print(f"bench: results in {out}", file=sys.stderr)
    return 1 if any("error" in results.get(s, {}) for s in only) else 0


def _section(
    section: str, world: World, plan: dict[str, Any], args: argparse.Namespace, results: dict[str, Any]
) -> None:
    if section == "e2e":
        results["e2e"] = e2e.run(world, **plan["e2e"])
    elif section == "throughput":
        results["throughput"] = throughput.run(world, **plan["throughput"], server=args.server, rounds=args.rounds)
    elif section == "scaling":
        results["scaling"] = scaling.run(world, **plan["scaling"])
    elif section == "startup":
        results["startup"] = startup.run(world, **plan["startup"])
    elif section == "board":
        results["board"] = board.run(world, **plan["board"])
    elif section == "profile":
        tool = args.profile_tool or _slowest(results) or "add_task(10)"
        results["profile"] = {tool: profiling.run(world, tool, out_dir=RESULTS, **plan["profile"])}
        if tool != "get_next_task(claim)":
            # The call agents make most, for comparison.
            results["profile"]["get_next_task(claim)"] = profiling.run(
                world, "get_next_task(claim)", out_dir=RESULTS, **plan["profile"]
            )


def _slowest(results: dict[str, Any]) -> str | None:
    tools = results.get("e2e", {}).get("tools", {})  # absent when e2e did not run or failed
    return max(tools, key=lambda name: tools[name]["median"]) if tools else None
