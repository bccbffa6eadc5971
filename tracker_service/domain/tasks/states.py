"""The task state machine. A repeat of the current status is a no-op success (agents retry)."""

from __future__ import annotations

from typing import Literal

Status = Literal["pending", "in_progress", "blocked", "completed", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("pending", "in_progress", "blocked", "completed", "failed", "cancelled")
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"in_progress", "blocked", "completed", "cancelled"}),
    "in_progress": frozenset({"pending", "blocked", "completed", "failed", "cancelled"}),
    "blocked": frozenset({"pending", "in_progress", "cancelled"}),
    "completed": frozenset({"pending"}),
    "failed": frozenset({"pending", "cancelled"}),
    "cancelled": frozenset({"pending"}),
}


def sources_of(target: str) -> list[str]:
    """Statuses a task may be in to move to `target`."""
    return [s for s, targets in TRANSITIONS.items() if target in targets]


def transition_hint(current: str, requested: str) -> str:
    allowed = sorted(TRANSITIONS[current])
    hint = f"from {current} a task can move to: {', '.join(allowed)}"
    if current in ("completed", "cancelled", "failed") and "pending" in TRANSITIONS[current]:
        hint += f"; reopen it with status=pending first, then set {requested}"
    return hint
