"""Property-based fuzzing of the served OpenAPI (schemathesis): no 5xx, every response (errors
included) matches the schema. Valid and invalid inputs, bounded so CI stays fast and repeatable (derandomized)."""

from __future__ import annotations

from collections import Counter

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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
]


class Run:
    """Runs every generated case and records failures instead of raising them: the counts cover
    the whole bounded run (no shrinking) and one report names every failing operation."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.cases = 0
        self.by_check: Counter[str] = Counter()  # failing cases per check
        self.first: dict[tuple[str, str], str] = {}  # one reproduction per operation, mode and failure

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
            self.check(case, f"{operation.label} ({mode.value})")

        run()

    def check(self, case, label: str) -> None:  # type: ignore[no-untyped-def]
        self.cases += 1
        response = case.call(headers=self.headers)
        try:
            case.validate_response(
                response, checks=CHECKS, headers=self.headers, transport_kwargs={"headers": self.headers}
            )
        except (Failure, FailureGroup) as exc:
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                self.by_check[failure.checks[0] if failure.checks else failure.title] += 1
                answer = f"[{response.status_code}] {response.text[:300]}"
                self.first.setdefault(
                    (label, failure.title), f"{failure.message}\n    {case.as_curl_command()}\n    -> {answer}"
                )


def test_api_conforms_to_its_schema(spawn_tracker, make_key):  # type: ignore[no-untyped-def]
    target = spawn_tracker(TRACKER_RATE_LIMIT_PER_MINUTE="0")
    schema = schemathesis.openapi.from_url(f"{target.url}/schema/openapi.json").exclude(path_regex=NOT_FUZZED)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    run = Run({"Authorization": f"Bearer {make_key('admin')}"})
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            run.fuzz(operation, mode, examples)
    print(f"\nfuzz: {len(operations)} operations, {run.cases} cases, failures by check: {dict(run.by_check) or 'none'}")
    report = [f"{label}: {title}\n{detail}" for (label, title), detail in run.first.items()]
    assert not report, f"{len(report)} distinct failures, by check {dict(run.by_check)}:\n\n" + "\n\n".join(report)
