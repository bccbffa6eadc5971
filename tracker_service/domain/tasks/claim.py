"""The claim: take the next ready task for an agent, in one statement with its activity-log row.

FOR UPDATE SKIP LOCKED over the candidates: two agents never get the same task, and neither waits
for the other. The route runs the statement in autocommit, so nothing else waits on it either.
With an Idempotency-Key the same statement records the key and the claimed task
(``CLAIM_RECORDED``), so the bridge's claims, which always carry one, stay one round trip.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Interval, Text, bindparam, cast, func, insert, literal, literal_column, select, update

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import events, tasks
from tracker_service.domain.tasks.queries import TASK_COLUMNS, candidate, next_task
from tracker_service.domain.tasks.states import constant, effects
from tracker_service.idempotency import key_record


def _claim_statement(typed: bool, recorded: bool = False) -> Any:
    cand = candidate()
    chosen = next_task(typed, "pending").with_for_update(skip_locked=True, of=cand).scalar_subquery()
    agent = bindparam("b_agent", type_=Text)
    moved = effects(
        tasks,
        previous=constant("pending"),
        new=constant("in_progress"),
        agent=agent,
        lease=bindparam("b_lease", type_=Interval),
        by_key=None,
    )
    moved.pop("review_requested_by")  # pending -> in_progress never starts a review
    claimed = update(tasks).where(tasks.c.id == chosen).values(moved).returning(*TASK_COLUMNS).cte("claimed")
    summary = literal("Task claimed by ") + agent + ": " + claimed.c.key + " " + claimed.c.title
    logged = insert(events).from_select(
        ["tenant", "project", "type", "entity_id", "actor", "summary"],
        select(
            bindparam("b_tenant"),
            claimed.c.project,
            literal("task.claimed"),
            cast(claimed.c.id, Text),
            agent,
            func.left(summary, 300),
        ),
    )
    statement = select(claimed).add_cte(logged.cte("logged"))
    if recorded:
        # The answer's makings, {"task": the claimed row or null}: a repeat answers from it.
        row = select(func.to_jsonb(literal_column(claimed.name))).select_from(claimed).scalar_subquery()
        statement = statement.add_cte(key_record(func.jsonb_build_object("task", row)).cte("recorded"))
    return statement


CLAIM = {typed: HotStatement(_claim_statement(typed)) for typed in (False, True)}
CLAIM_RECORDED = {typed: HotStatement(_claim_statement(typed, recorded=True)) for typed in (False, True)}
