"""The cap on an owner's jobs not final yet (jobs/api/limits.py), checked before the body is read.

The input size of a chunked body is tested in tests/e2e/test_limits.py (gunicorn decodes it),
a declared oversized body in test_submit.py.
"""

import pytest

from jobs.models import Job
from jobs.states import Status
from tests.support.jobs_api import JobMaker, assert_problem, staging_tmp_files, unread_body

ACTIVE_CAP = 4


@pytest.fixture(autouse=True)
def small_cap(settings):
    settings.MAX_ACTIVE_JOBS_PER_OWNER = ACTIVE_CAP


@pytest.fixture
def make_jobs():
    maker = JobMaker()
    yield maker
    maker.remove()


def _jobs_of(owner) -> int:
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub).count()


def test_an_owner_at_the_cap_of_active_jobs_is_refused_before_the_body_is_read(
    api, alice, make_jobs
):
    active = make_jobs(alice, Status.CREATED, Status.STORED, Status.SUBMITTED, Status.CREATED)
    make_jobs(alice, Status.EXECUTION_COMPLETED, Status.STORED_ERROR)  # final: not counted

    # Not a byte of the body is read (reading it would end in a 500): the answer comes anyway.
    response = api.submit(alice, b"", **unread_body(1000))

    assert_problem(response, 429, "too_many_active_jobs")
    assert response["Retry-After"] == "30"
    assert _jobs_of(alice) == len(active) + 2
    assert staging_tmp_files() == []

    # One job final, and there is room again.
    Job.objects.filter(pk=active[0].pk).update(status=Status.EXECUTION_COMPLETED)
    assert api.submit(alice, b"some input").status_code == 202


def test_a_repeat_with_its_idempotency_key_is_answered_at_the_cap(api, alice, make_jobs):
    first = api.submit(alice, b"once", headers={"Idempotency-Key": "limits-1"})
    assert first.status_code == 202
    make_jobs(alice, *[Status.CREATED] * ACTIVE_CAP)

    refused = api.submit(alice, b"another")
    repeat = api.submit(alice, b"once", headers={"Idempotency-Key": "limits-1"})

    assert_problem(refused, 429, "too_many_active_jobs")
    assert repeat.status_code == 202
    assert repeat.json()["id"] == first.json()["id"]
