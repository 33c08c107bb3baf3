"""Schema-driven fuzzing: schemathesis sends what the schema describes to the API, in-process
(frontservice.wsgi.application, called through schemathesis's WSGI transport), with the
reference services behind it.

Every answer must be no 5xx, with a status, a media type and a body the schema describes.
Bounded (examples per operation, fixed seed) so it takes seconds; its inputs are the few bytes
Hypothesis generates, so the jobs it makes are small.

Hypothesis drives schemathesis's strategies directly: schemathesis's own pytest integration
(`schema.parametrize()`) does not run on the pytest this project uses (it sets
`Node._nodeid`, which pytest 9 no longer has).
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from frontservice.wsgi import application
from tests.support.inprocess import submit, wait_for_status

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
BOUNDS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _operations() -> list:
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_as_its_schema_says(services, alice, mode):
    operations = _operations()
    assert {operation.label for operation in operations} == {
        "POST /api/v1/job",
        "GET /api/v1/job",
        "GET /api/v1/job/{job_id}/status",
        "GET /api/v1/job/{job_id}/output",
        "POST /api/v1/job/{job_id}/cancel",
    }

    for operation in operations:

        @BOUNDS
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_as_described(case):
            case.call_and_validate(headers=alice.headers, checks=CHECKS, timeout=30)

        answers_as_described()


def test_real_jobs_are_answered_as_described(api, alice):
    # Random ids only ever meet 404s: these are the 200s, of a job that completed and of one
    # that failed (its `error` object), and the 404s of one that is not done.
    done = submit(api, alice, b"fuzz me")["id"]
    failed = submit(api, alice, b"#fail fuzz me")["id"]
    wait_for_status(api, alice, done, {"EXECUTION_COMPLETED"})
    wait_for_status(api, alice, failed, {"EXECUTION_ERROR"})
    # Its task is never run here: it stays CREATED.
    running = submit(api, alice, b"not done yet")["id"]
    operations = _operations()
    reads = [op for op in operations if op.method.upper() == "GET" and "{job_id}" in op.path]

    for job_id in (done, failed, running):
        for operation in reads:

            @settings(BOUNDS, max_examples=3)
            @given(case=operation.as_strategy(path_parameters={"job_id": job_id}))
            def answers_as_described(case):
                case.call_and_validate(headers=alice.headers, checks=CHECKS, timeout=30)

            answers_as_described()

    # Cancels of real jobs, after the reads: 409 for the final ones; 200 for the third, which
    # is cancelled locally (it never reached JobService), and 200 again for its repeats.
    (cancel,) = [op for op in operations if op.label.endswith("/cancel")]
    for job_id in (done, failed, running):

        @settings(BOUNDS, max_examples=3)
        @given(case=cancel.as_strategy(path_parameters={"job_id": job_id}))
        def cancel_answers_as_described(case):
            case.call_and_validate(headers=alice.headers, checks=CHECKS, timeout=30)

        cancel_answers_as_described()
