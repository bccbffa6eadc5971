"""Every change to an existing task, in one statement: lock it, judge the request, apply, log.

PUT status, PATCH (with or without a status), cancel, review verdicts and a parent completing
itself all run this statement. It locks the task's row, decides whether the request is allowed
(the `verdict`: one CASE, in the order below), updates the row with the state machine's effects
(domain.tasks.states) and the fields given, and writes the log row. When the request is refused
nothing changes and the statement says why (`refusal`), with the row as it is; the caller turns
that into an error. So a refusal never needs a second look, and a success is one round trip.

Refusals, checked in this order:
  finished            a cancellation of completed or failed work (DELETE /task/{id})
  invalid_transition  the state machine has no such move
  held                another agent holds the task (in_progress with a live lease, or the request
                      starts it while it is assigned to someone else); an assignment that takes a
                      held task from its holder, unless the key is an admin's
  review_lowered      turning requires_review off, unless the key is an admin's
  review_required     completing a task that needs review without one
  own_review          a verdict from the key that asked for the review, or by the agent that did
                      the work
  not_reviewer        a verdict from someone the project's reviewers do not include
  open_children       completing a parent whose children are not all completed or cancelled
  not_auto            (a parent completing itself) it is not set to, or may not yet
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from sqlalchemy import (
    Boolean,
    Interval,
    Text,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.db.hot import HotStatement
from tracker_service.db.models import events, project_settings, tasks
from tracker_service.domain.tasks.queries import task_columns
from tracker_service.domain.tasks.refs import ref_match, ref_where
from tracker_service.domain.tasks.states import CLOSED, VERDICTS, effects, event_of, one_of, sources_of
from tracker_service.idempotency import KeyedRequest, key_record

# Fields a change may set besides the status, with their column types for the bind parameters.
FIELDS: dict[str, Any] = {
    c.name: c.type
    for c in tasks.c
    if c.name
    in (
        "title",
        "description",
        "priority",
        "assigned_to",
        "tags",
        "notes",
        "completion_notes",
        "inputs",
        "outputs",
        "due_date",
        "related_handoff_id",
        "result",
        "type",
        "requires_review",
        "review_notes",
        "parent_id",
        "auto_complete",
    )
}


@dataclass
class Change:
    """One request to change a task: its target status (None: keep), fields, and who asks."""

    tenant: str
    actor: str  # the key's name
    key_id: str
    admin: bool
    lease: timedelta
    status: str | None = None
    agent: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    only_if_auto: bool = False  # a parent completing itself: refused quietly when it may not
    unfinished_only: bool = False  # a cancellation: finished work stays as it is
    also_changed: tuple[str, ...] = ()  # changed before the statement (dependencies), for the log


@dataclass
class Outcome:
    """What the statement did: the changed task, or why nothing changed."""

    matches: int
    refusal: str | None
    current: dict[str, Any]  # the row as it was (status, assigned_to, open_children, ...)
    task: dict[str, Any] | None  # the changed task's columns (TaskOut), None when refused
    previous: str | None = None
    parent_id: UUID | None = None


def _statement(match: str, names: Iterable[str], recorded: bool = False) -> Any:
    names = sorted(names)
    t = tasks
    where = ref_where(t, match)
    target = (
        select(
            t.c.id,
            t.c.key,
            t.c.project,
            t.c.status,
            t.c.assigned_to,
            t.c.lease_expires_at,
            t.c.requires_review,
            t.c.review_requested_by,
            t.c.open_children,
            t.c.parent_id,
            t.c.auto_complete,
        )
        .where(*where)
        # NO KEY UPDATE: keys never change here, and a plain FOR UPDATE would also block others
        # adding dependencies on (or children to) this task, whose foreign keys share-lock it.
        .with_for_update(key_share=True)
        .cte("target")
    )
    one = select(target).where(select(func.count()).select_from(target).scalar_subquery() == 1).cte("one")

    status = bindparam("b_status", type_=Text)
    agent = bindparam("b_agent", type_=Text)
    actor = bindparam("b_actor", type_=Text)
    key_id = bindparam("b_key_id", type_=PgUUID)
    admin = bindparam("b_admin", type_=Boolean)
    given = {name: bindparam(f"f_{name}", type_=FIELDS[name]) for name in names}
    live_lease = func.coalesce(one.c.lease_expires_at > func.now(), true())
    verdict_move = one_of(status, list(VERDICTS)) & (one.c.status == "in_review")
    reviewers = func.coalesce(
        select(project_settings.c.reviewers)
        .where(project_settings.c.tenant == bindparam("b_tenant"), project_settings.c.project == one.c.project)
        .scalar_subquery(),
        literal_column("'{}'::text[]"),
    )
    needs_review = given["requires_review"] if "requires_review" in given else one.c.requires_review
    rules = [
        (bindparam("b_unfinished_only", type_=Boolean) & one_of(one.c.status, ("completed", "failed")), "finished"),
        (
            status.isnot(None)
            & (one.c.status != status)
            & ~(one.c.status == any_(bindparam("b_sources", type_=ARRAY(Text)))),
            "invalid_transition",
        ),
        (
            agent.isnot(None)
            & one.c.assigned_to.isnot(None)
            & (one.c.assigned_to != agent)
            & (one.c.status != "in_review")
            & or_(
                (one.c.status == "in_progress") & live_lease,
                (status == "in_progress") & (one.c.status != "in_progress"),
            ),
            "held",
        ),
    ]
    if "assigned_to" in given:
        takes = given["assigned_to"].is_distinct_from(one.c.assigned_to) & one.c.assigned_to.isnot(None)
        rules.append((takes & (one.c.status == "in_progress") & live_lease & ~admin, "held"))
    if "requires_review" in given:
        rules.append((~given["requires_review"] & one.c.requires_review & ~admin, "review_lowered"))
    rules += [
        (
            (status == "completed") & (one.c.status != "completed") & needs_review & (one.c.status != "in_review"),
            "review_required",
        ),
        (
            verdict_move
            & or_(one.c.review_requested_by == key_id, one.c.assigned_to == agent, one.c.assigned_to == actor),
            "own_review",
        ),
        (
            verdict_move & (func.cardinality(reviewers) > 0) & ~(func.coalesce(agent, actor) == any_(reviewers)),
            "not_reviewer",
        ),
        ((status == "completed") & (one.c.status != "completed") & (one.c.open_children > 0), "open_children"),
        (
            bindparam("b_only_auto", type_=Boolean)
            & ~(
                one.c.auto_complete
                & (one.c.open_children == 0)
                & ~one.c.requires_review
                & ~one_of(one.c.status, CLOSED)
            ),
            "not_auto",
        ),
    ]
    verdict = select(one, case(*((cond, literal(code)) for cond, code in rules), else_=null()).label("refusal")).cte(
        "verdict"
    )

    values = effects(
        t,
        previous=verdict.c.status,
        new=func.coalesce(status, verdict.c.status),
        agent=agent,
        lease=bindparam("b_lease", type_=Interval),
        by_key=key_id,
    )
    values.update(given)
    changed = (
        t.update()
        .where(t.c.id == verdict.c.id, verdict.c.refusal.is_(None))
        .values(values)
        .returning(*task_columns(t), verdict.c.status.label("previous"), t.c.parent_id.label("parent_ref"))
        .cte("changed")
    )
    moved = changed.c.previous != changed.c.status
    described = bindparam("b_described", type_=Text)  # the fields changed, for the log
    summary = case(
        (moved, literal("Task ") + changed.c.key + ": " + changed.c.previous + " → " + changed.c.status),
        else_=literal("Task updated: ") + changed.c.key + " (" + described + ")",
    )
    # The status the task is in after the change: event consumers (the WebSocket's seed 004 names,
    # task_completed...) need it without parsing the summary.
    noted = ("review_notes", given["review_notes"]) if "review_notes" in given else ()
    data = func.jsonb_build_object("status", changed.c.status, *noted)
    logged = insert(events).from_select(
        ["tenant", "project", "type", "entity_id", "actor", "summary", "data"],
        select(
            bindparam("b_tenant"),
            changed.c.project,
            case((moved, event_of(changed.c.previous, changed.c.status)), else_=literal("task.updated")),
            cast(changed.c.id, Text),
            func.coalesce(agent, actor),
            func.left(summary, 300),
            cast(data, JSONB),
        ).where(moved | (described != "")),
    )
    matches = select(func.count().label("matches")).select_from(target).cte("matches")
    statement = (
        select(
            matches.c.matches,
            verdict.c.refusal,
            verdict.c.status.label("current_status"),
            verdict.c.assigned_to.label("current_holder"),
            verdict.c.lease_expires_at.label("current_lease"),
            verdict.c.open_children.label("current_open_children"),
            verdict.c.id.label("current_id"),
            verdict.c.key.label("current_key"),
            verdict.c.project.label("current_project"),
            *(c for c in changed.c),
        )
        .select_from(matches.outerjoin(verdict, true()).outerjoin(changed, true()))
        .add_cte(logged.cte("logged"))
    )
    if recorded:
        # The answer's makings, {"task": the changed row}, only when the change applied: a repeat
        # answers from it; a refusal records nothing, so its repeat is judged again.
        row = literal_column(f"to_jsonb({changed.name}) - 'previous' - 'parent_ref'", JSONB)
        answer = func.jsonb_build_object("task", select(row).select_from(changed).scalar_subquery())
        statement = statement.add_cte(key_record(answer, when=exists(select(changed.c.id))).cte("recorded"))
    return statement


_STATEMENTS: dict[tuple[str, frozenset[str], bool], HotStatement] = {}


def _prepared(match: str, names: frozenset[str], recorded: bool) -> HotStatement:
    key = (match, names, recorded)
    if key not in _STATEMENTS:  # one per shape of request, built on first use
        _STATEMENTS[key] = HotStatement(_statement(match, names, recorded))
    return _STATEMENTS[key]


async def apply(
    conn: AsyncConnection, ref: str, project: str | None, change: Change, keyed: KeyedRequest | None = None
) -> Outcome:
    """Run the change statement for the task `ref` names (a UUID, or a key, in `project` if given).
    With `keyed`, the statement also records the request's Idempotency-Key when the change applies;
    a taken key fails it (idempotency.key_taken)."""
    params: dict[str, Any] = {
        "b_tenant": change.tenant,
        "b_status": change.status,
        "b_sources": sources_of(change.status) if change.status else [],
        "b_agent": change.agent,
        "b_actor": change.actor,
        "b_key_id": change.key_id,
        "b_admin": change.admin,
        "b_lease": change.lease,
        "b_only_auto": change.only_if_auto,
        "b_unfinished_only": change.unfinished_only,
        "b_described": ", ".join(sorted({*change.fields, *change.also_changed} - {"review_notes"})),
    }
    match, binds = ref_match(ref, project)
    params.update(binds)
    for name, value in change.fields.items():
        # Statements run on psycopg directly (db.hot): JSON columns take their values wrapped.
        params[f"f_{name}"] = Jsonb(value) if isinstance(FIELDS[name], JSONB) and value is not None else value
    if keyed is not None:
        params.update(keyed.params(change.tenant))
    row = await _prepared(match, frozenset(change.fields), keyed is not None).first(conn, params)
    assert row is not None  # the statement always answers one row
    current = {
        "id": row["current_id"],
        "key": row["current_key"],
        "project": row["current_project"],
        "status": row["current_status"],
        "assigned_to": row["current_holder"],
        "lease_expires_at": row["current_lease"],
        "open_children": row["current_open_children"],
    }
    if row["refusal"] is not None or row["id"] is None:
        return Outcome(matches=row["matches"], refusal=row["refusal"], current=current, task=None)
    task = {k: v for k, v in row.items() if not k.startswith("current_") and k not in ("matches", "refusal")}
    previous = task.pop("previous")
    parent_id = task.pop("parent_ref")
    return Outcome(
        matches=row["matches"], refusal=None, current=current, task=task, previous=previous, parent_id=parent_id
    )
