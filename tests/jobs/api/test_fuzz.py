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
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_without_a_token_every_operation_answers_a_problem_and_never_a_5xx(services, mode):
    # What anyone on the internet can send: the schema's operations without a token.
    for operation in _operations():

        @BOUNDS
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_without_a_token(case):
            case.call_and_validate(
                headers={"Authorization": ""},
                checks=[not_a_server_error, content_type_conformance],
                timeout=30,
            )

        answers_without_a_token()


# Every path that answers without a token, and the paths of the API that refuse without one.
UNAUTHENTICATED_PATHS = [
    "/api/v1/job",
    "/api/v1/job/5fae24ed-11a1-4c0d-a1d4-76da377c6978/status",
    "/api/v1/job/5fae24ed-11a1-4c0d-a1d4-76da377c6978/output",
    "/api/schema/",
    "/api/docs/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin/login/",
    "/no/such/path",
]
_QUERY_NAMES = st.sampled_from(
    ["format", "cursor", "limit", "status", "callback_url", "created_after", "lang", "next"]
)


def test_any_query_string_and_accept_without_a_token_is_never_a_5xx(db):
    client = Client()

    @settings(BOUNDS, max_examples=40)
    @given(
        query=st.dictionaries(_QUERY_NAMES | st.text(max_size=8), st.text(max_size=20), max_size=4),
        accept=st.sampled_from(["", "*/*", "text/html", "application/xml", "x/y;q=z", "a" * 300])
        | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    )
    def never_a_5xx(query, accept):
        for path in UNAUTHENTICATED_PATHS:
            response = client.get(path, query, headers={"Accept": accept})

            assert response.status_code < 500, (path, query, accept, response.content[:300])

    never_a_5xx()
