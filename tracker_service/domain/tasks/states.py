"""The task state machine, in one place: the moves, what each move changes, and when one is refused.

Every writer of a task's status takes its rules from here: the change statement (PUT status,
PATCH, cancel, review verdicts, a parent completing itself: domain.tasks.change), the claim
(domain.tasks.claim) and the lapse of a lease (domain.tasks.housekeeping). The table is Python;
`effects` builds the SQL that applies a move, so no writer spells the side effects again.

A repeat of the current status is a no-op success (agents retry).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Table, case, func, literal, null, or_

Status = Literal["pending", "in_progress", "blocked", "in_review", "completed", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("pending", "in_progress", "blocked", "in_review", "completed", "failed", "cancelled")
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
# A child in one of these no longer holds its parent open (the trigger of migration 0008 counts the rest).
CLOSED: tuple[str, ...] = ("completed", "cancelled")

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"in_progress", "blocked", "completed", "cancelled"}),
    "in_progress": frozenset({"pending", "blocked", "in_review", "completed", "failed", "cancelled"}),
    "blocked": frozenset({"pending", "in_progress", "cancelled"}),
    # A review ends in a verdict: approved (completed) or changes requested (in_progress for the same
    # agent, or pending for anyone); or the work is dropped.
    "in_review": frozenset({"completed", "in_progress", "pending", "cancelled"}),
    "completed": frozenset({"pending"}),
    "failed": frozenset({"pending", "cancelled"}),
    "cancelled": frozenset({"pending"}),
}
# Moves out of in_review that are a reviewer's verdict, and the event each one logs.
VERDICTS: dict[str, str] = {
    "completed": "task.approved",
    "in_progress": "task.changes_requested",
    "pending": "task.changes_requested",
}


def sources_of(target: str) -> list[str]:
    """Statuses a task may be in to move to `target`."""
    return [s for s, targets in TRANSITIONS.items() if target in targets]


def event_of(previous: Any, new: Any) -> Any:
    """The activity-log event of a move from `previous` to `new` (SQL), when they differ."""
    verdicts = [((previous == "in_review") & (new == target), literal(event)) for target, event in VERDICTS.items()]
    return case((new == "in_review", literal("task.review_requested")), *verdicts, else_=literal("task.status"))


def effects(row: Table, previous: Any, new: Any, agent: Any, lease: Any, by_key: Any) -> dict[str, Any]:
    """The columns a move of `row` from `previous` to `new` sets, as SQL expressions.

    Arguments are SQL: constants for the claim ('pending' -> 'in_progress') and the lapse, the
    locked row's status and the request's values for the change statement. When `previous` equals
    `new` the move is a repeat and these columns keep their values.
    """
    c = row.c
    same = previous == new
    released = one_of(previous, ("in_progress", "in_review")) & (new == "pending")
    return {
        "status": new,
        "updated_at": func.now(),
        "completed_at": case((same, c.completed_at), (new == "completed", func.now()), else_=null()),
        # Leases run only while in_progress: a task in review, blocked or done holds none.
        "lease_expires_at": case((same, c.lease_expires_at), (new == "in_progress", func.now() + lease), else_=null()),
        # Released work is open to every agent again; an agent that starts work takes the task.
        "assigned_to": case(
            (same, c.assigned_to),
            (released, null()),
            (new == "in_progress", func.coalesce(c.assigned_to, agent)),
            else_=c.assigned_to,
        ),
        "review_requested_by": case((~same & (new == "in_review"), by_key), else_=c.review_requested_by),
    }


def transition_hint(current: str, requested: str) -> str:
    allowed = sorted(TRANSITIONS[current])
    hint = f"from {current} a task can move to: {', '.join(allowed)}"
    if current in ("completed", "cancelled", "failed") and "pending" in TRANSITIONS[current]:
        hint += f"; reopen it with status=pending first, then set {requested}"
    if requested == "in_review" and current != "in_progress":
        hint += "; a task goes to review from in_progress, when its holder has done the work"
    return hint


def one_of(expr: Any, values: tuple[str, ...] | list[str]) -> Any:
    """expr IN (...) as ORs of equalities: prepared statements (db.hot) take no expanding IN."""
    return or_(*(expr == value for value in values))


def constant(value: str) -> Any:
    """A status (or other text) as an SQL constant, inlined into prepared statements (db.hot)."""
    return literal(value)
