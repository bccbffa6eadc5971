"""Property-based fuzzing of the served OpenAPI (schemathesis): no 5xx, every response (errors
included) matches the schema, and the schema says exactly what is accepted: what it describes as
valid is accepted, what it describes as invalid is refused. Valid and invalid inputs, bounded so
CI stays fast and repeatable (derandomized)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from pydantic import TypeAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config._checks import (  # not exported; the check's own defaults, plus 413
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    NegativeDataRejectionConfig,
)
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from tracker_service.domain.common import AwareDatetime

pytestmark = pytest.mark.slow

# /events and /whoami/watch stream forever and a synchronous delegation waits for a worker: they
# are tested on their own (test_events_stream.py, test_revocation.py, test_delegation.py).
NOT_FUZZED = r"^/(events|whoami/watch|task/delegate)$"
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 15}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
# A body over the size limit is refused before it is read: 413 is a refusal too.
REFUSED = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]

# Refusals the document cannot say yet: their handlers and models are in domain/tasks, which is
# being rewritten; the change each needs is described in the openapi-exact branch's report
# (an `alternatives` opt, `choices_query` filters, TaskIn's title-or-description rule in its
# json_schema_extra). Only these refusals are let through, and each must still happen: once the
# document says it, the entry fails the test until it is removed.
PENDING_TASKS_CHANGES: dict[str, tuple[str, ...]] = {}


class Run:
    """Runs every generated case and records failures instead of raising them: the counts cover
    the whole bounded run (no shrinking) and one report names every failing operation."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.cases = 0
        self.by_check: Counter[str] = Counter()  # failing cases per check
        self.first: dict[tuple[str, str], str] = {}  # one reproduction per operation, mode and failure
        self.pending: Counter[str] = Counter()  # refusals let through, by operation and mode
        self.unmakeable: Counter[str] = Counter()  # runs cut short by a case hypothesis cannot make

    def fuzz(self, operation, mode: GenerationMode, examples: int) -> None:  # type: ignore[no-untyped-def]
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def run(case):  # type: ignore[no-untyped-def]
            if mode is GenerationMode.POSITIVE:
                valid_now(case)
            self.check(case, f"{operation.label} ({mode.value})")

        try:
            run()
        except hypothesis.errors.InvalidArgument as exc:
            # A negative case one past a maxLength of 100,000 (a task's description) is a string
            # longer than hypothesis can make: it refuses the draw, and that operation's remaining
            # negative cases with it. Not a finding about the service; counted and shown.
            if "larger than Hypothesis supports" not in str(exc):
                raise
            self.unmakeable[f"{operation.label} ({mode.value})"] += 1

    def check(self, case, label: str) -> None:  # type: ignore[no-untyped-def]
        self.cases += 1
        response = case.call(headers=self.headers)
        try:
            case.validate_response(
                response, checks=CHECKS, headers=self.headers, transport_kwargs={"headers": self.headers}
            )
        except (Failure, FailureGroup) as exc:
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                pending = PENDING_TASKS_CHANGES.get(label, ())
                if "positive_data_acceptance" in failure.checks and any(r in response.text for r in pending):
                    self.pending[label] += 1
                    continue
                self.by_check[failure.checks[0] if failure.checks else failure.title] += 1
                answer = f"[{response.status_code}] {response.text[:300]}"
                self.first.setdefault(
                    (label, failure.title), f"{failure.message}\n    {case.as_curl_command()}\n    -> {answer}"
                )


_TIME = TypeAdapter(AwareDatetime)
# Fields naming other records: the document says their form, not that the record exists, a rule of
# the data at run time (like expires_at's, relative to now); tests of their own cover both.
REFERENCES = ("response_to", "related_handoff_id", "depends_on", "parent")
# A conversation message's links to tasks and handoffs (its "tasks" is not a batch's list of tasks).
MESSAGE_REFERENCES = ("tasks", "handoffs")


def valid_now(case) -> None:  # type: ignore[no-untyped-def]
    """Make a valid case valid against the data too: no references to records that do not exist,
    and a handoff that expires later than now."""
    if case.operation.path == "/import" and isinstance(case.body, dict):
        valid_import(case.body)
    bodies = [case.body] if isinstance(case.body, dict) else []
    bodies += [t for t in (bodies[0].get("tasks") if bodies else None) or [] if isinstance(t, dict)]
    messages = [b for b in bodies if "role" in b]
    messages += [m for m in (bodies[0].get("messages") if bodies else None) or [] if isinstance(m, dict)]
    for message in messages:
        for name in MESSAGE_REFERENCES:
            message.pop(name, None)
    for body in bodies:
        for name in REFERENCES:
            body.pop(name, None)
        if isinstance(body.get("expires_at"), str) and _TIME.validate_python(body["expires_at"]) <= datetime.now(UTC):
            body["expires_at"] = "2999-01-01T00:00:00Z"


# POST /import: that `content` reads as the format named, and that a dump's records are rows, are
# rules of the data (like a reference's); the document says the body's shape. test_transfer.py
# covers both.
VALID_FILES = {"dump": "", "taskmaster": '{"tasks": []}', "beads": "", "todo": "- [ ] fuzzed"}


def valid_import(body: dict) -> None:  # type: ignore[type-arg]
    if isinstance(body.get("content"), str):
        body["content"] = VALID_FILES.get(body.get("format", "dump"), "")
    if isinstance(body.get("records"), list):
        body["records"] = []


def test_api_conforms_to_its_schema(spawn_tracker, make_key):  # type: ignore[no-untyped-def]
    target = spawn_tracker(TRACKER_RATE_LIMIT_PER_MINUTE="0")
    schema = schemathesis.openapi.from_url(f"{target.url}/schema/openapi.json").exclude(path_regex=NOT_FUZZED)
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(expected_statuses=REFUSED)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    run = Run({"Authorization": f"Bearer {make_key('admin')}"})
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            run.fuzz(operation, mode, examples)
    print(
        f"\nfuzz: {len(operations)} operations, {run.cases} cases, failures by check: {dict(run.by_check) or 'none'}, "
        f"pending: {dict(run.pending)}, cut short: {dict(run.unmakeable) or 'none'}"
    )
    report = [f"{label}: {title}\n{detail}" for (label, title), detail in run.first.items()]
    report += [
        f"{label}: no longer refused as pending; remove it" for label in PENDING_TASKS_CHANGES.keys() - run.pending
    ]
    assert not report, f"{len(report)} distinct failures, by check {dict(run.by_check)}:\n\n" + "\n\n".join(report)
