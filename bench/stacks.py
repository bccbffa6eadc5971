"""Read py-spy's collapsed stacks ("--format raw": `frame;frame;... count` per line) and say where
the samples went: inclusive share per function, self share per function, and per package."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

# Where this checkout is (a worktree is not /work/main): its files are labelled package-relative too.
_CHECKOUT = str(Path(__file__).resolve().parents[1]) + "/"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        stacks.append((head.split(";"), int(count)))
    return stacks


def label(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `module/path.py:func` shortened to the package-relative path."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/", _CHECKOUT):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{m.group('func')}"


def package(frame: str) -> str:
    file = label(frame).split(":", 1)[0]
    if file.startswith(("tracker_service/", "mcp_tools/", "bench/")):
        return "/".join(file.split("/")[:2]).removesuffix(".py")
    return file.split("/", 1)[0].removesuffix(".py")


# Leaf frames of a thread that is waiting, not working: the event loop's poll, a worker thread's
# queue, a lock. py-spy --nonblocking cannot always tell them apart, so they are set aside here.
IDLE_LEAVES = (
    "selectors.py:EpollSelector.select",
    "selectors.py:PollSelector.select",
    "threading.py:Condition.wait",
    "threading.py:Event.wait",
    "threading.py:Thread.join",
    "queue.py:Queue.get",
    "time.sleep",
    # uvloop's loop is C code under Runner.run: samples that end there are the loop polling.
    "asyncio/runners.py:Runner.run",
)


def summary(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares (%) of the samples in which the thread was working, i.e. not parked in IDLE_LEAVES."""
    everything = parse(path)
    stacks = [(f, c) for f, c in everything if f and label(f[-1]) not in IDLE_LEAVES]
    total = sum(c for _, c in stacks)
    idle = sum(c for _, c in everything) - total
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    for frames, count in stacks:
        seen = set()
        for f in frames:
            name = label(f)
            if name not in seen:
                inclusive[name] += count
                seen.add(name)
        if frames:
            own[label(frames[-1])] += count
            by_package[package(frames[-1])] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100.0 * c / total) for name, c in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "idle_samples_set_aside": idle,
        "inclusive": pct(inclusive),
        "self": pct(own),
        "self_by_package": pct(by_package),
    }
