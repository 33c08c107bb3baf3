"""Per-owner request rates (jobs/api/throttling.py): submissions and cancels against one rate,
status and output reads against another, refused with 429 and Retry-After.

The rates are set small for each test (per day: the window only turns over at midnight UTC,
never in the middle of a test). That the counts are shared by gunicorn's worker processes is
tested in tests/e2e/test_limits.py.
"""

import pytest

from jobs.models import Job
from jobs.states import Status
from tests.support.jobs_api import JobMaker, assert_problem, staging_tmp_files

SUBMIT_LIMIT = 3
READ_LIMIT = 5
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def small_rates(settings):
    settings.RATE_LIMIT_SUBMIT = (SUBMIT_LIMIT, DAY)
    settings.RATE_LIMIT_READ = (READ_LIMIT, DAY)


@pytest.fixture
def make_jobs():
    maker = JobMaker()
    yield maker
    maker.remove()


def _jobs_of(owner) -> int:
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub).count()


def test_posts_past_the_submit_rate_are_refused_per_owner(api, alice, bob, mallory):
    answers = [api.submit(alice, f"input {n}".encode()) for n in range(SUBMIT_LIMIT + 1)]

    assert [answer.status_code for answer in answers] == [202] * SUBMIT_LIMIT + [429]
    refused = answers[-1]
    assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= DAY
    # Refused before the body was read: no job, nothing staged.
    assert _jobs_of(alice) == SUBMIT_LIMIT
    assert staging_tmp_files() == []
    # The owner is the pair (tenant, sub): a colleague and a namesake elsewhere are unaffected.
    assert api.submit(bob).status_code == 202
    assert api.submit(mallory).status_code == 202


def test_reads_past_the_read_rate_are_refused_per_owner(api, alice, bob, make_jobs):
    (job,) = make_jobs(alice, Status.EXECUTION_COMPLETED)
    (bobs_job,) = make_jobs(bob, Status.EXECUTION_COMPLETED)

    answers = [api.status_of(alice, job.id) for _ in range(READ_LIMIT + 1)]

    assert [answer.status_code for answer in answers] == [200] * READ_LIMIT + [429]
    assert_problem(answers[-1], 429, "rate_limited")
    assert 1 <= int(answers[-1]["Retry-After"]) <= DAY
    # Status and output reads count against one rate.
    assert_problem(api.output_of(alice, job.id), 429, "rate_limited")
    assert api.status_of(bob, bobs_job.id).status_code == 200
    # Reads and submissions are counted apart.
    assert api.submit(alice).status_code == 202


def test_cancels_count_against_the_submit_rate(api, alice, make_jobs):
    jobs = make_jobs(alice, *[Status.CREATED] * SUBMIT_LIMIT)
    assert api.submit(alice).status_code == 202

    answers = [api.cancel(alice, job.id) for job in jobs]

    # One POST and SUBMIT_LIMIT - 1 cancels fill the rate; the last cancel is refused.
    assert [answer.status_code for answer in answers] == [200] * (SUBMIT_LIMIT - 1) + [429]
    assert_problem(answers[-1], 429, "rate_limited")
    assert Job.objects.get(pk=jobs[-1].pk).status == Status.CREATED
    # Reads are counted apart.
    assert api.status_of(alice, jobs[0].id).json()["status"] == Status.CANCELLED
