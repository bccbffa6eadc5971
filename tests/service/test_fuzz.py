"""Property-based fuzzing of the served OpenAPI (schemathesis): no 5xx, and every response,
errors included, matches the schema (status, content type, body). Valid and invalid inputs,
bounded so CI stays fast and repeatable (derandomized)."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

# /events streams forever and a synchronous delegation waits for a worker: both are tested
# on their own (test_events_stream.py, test_delegation.py), not fuzzed.
NOT_FUZZED = r"^/(events|whoami/watch|task/delegate)$"
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 15}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_conforms_to_its_schema(spawn_tracker, make_key):  # type: ignore[no-untyped-def]
    target = spawn_tracker(TRACKER_RATE_LIMIT_PER_MINUTE="0")
    headers = {"Authorization": f"Bearer {make_key('admin')}"}
    schema = schemathesis.openapi.from_url(f"{target.url}/schema/openapi.json").exclude(path_regex=NOT_FUZZED)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:
        for mode, examples in EXAMPLES.items():

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
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
