"""Per-owner request rates (jobs/api/throttling.py): submissions and cancels against one rate,
status and output reads against another, refused with 429 and Retry-After.

The rates are set small for each test (per day: the window only turns over at midnight UTC,
never in the middle of a test). That the counts are shared by gunicorn's worker processes is
tested in tests/e2e/test_limits.py.
"""

import time
import uuid

import pytest

from frontservice import mongo
from jobs.api import throttling
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


# --- Leases: a busy process counts ahead on the shared counter --------------------------------


def _stored_count(key: str) -> int:
    document = mongo.connection.get_collection(throttling.COLLECTION).find_one({"_id": key})
    return document["count"] if document else 0


def _key() -> str:
    return f"ratelimit:test:{uuid.uuid4().hex}:0"


def _ends() -> float:
    return time.time() + DAY


def test_a_small_limit_is_counted_one_request_at_a_time():
    leases, key = throttling._Leases(), _key()
    limit = throttling.LEASE_SHARE - 1

    admitted = [leases.admit(key, limit=limit, ends=_ends()) for _ in range(limit + 1)]

    assert admitted == [True] * limit + [False]
    assert _stored_count(key) == limit


def test_a_busy_owner_is_counted_ahead_in_doubling_leases():
    leases, key = throttling._Leases(), _key()
    limit = 20 * throttling.LEASE_SHARE  # leases of up to 20

    counts = []
    for _ in range(1 + 2 + 4 + 8 + 16 + 20):
        assert leases.admit(key, limit=limit, ends=_ends())
        counts.append(_stored_count(key))

    # 51 requests, 6 round trips: the counter moved by 1, 2, 4, 8, 16 and then the cap, 20.
    assert sorted(set(counts)) == [1, 3, 7, 15, 31, 51]
    assert counts[-1] == 51


def test_leases_of_two_processes_never_admit_past_the_limit():
    first, second, key = throttling._Leases(), throttling._Leases(), _key()
    limit = 4 * throttling.LEASE_SHARE  # leases of up to 4

    admitted = 0
    for n in range(2 * limit):
        # Uneven: the first process takes two requests for each of the second's.
        admitted += (first if n % 3 else second).admit(key, limit=limit, ends=_ends())

    # What the processes leased and did not spend is lost: at most lease - 1 each. (The
    # stored count passes the limit: the asks that were refused, or granted in part, count.)
    assert limit - 2 * 3 <= admitted <= limit
    assert _stored_count(key) >= limit


def test_past_the_limit_a_process_refuses_without_asking_again():
    leases, key = throttling._Leases(), _key()
    limit = 3
    for _ in range(limit):
        assert leases.admit(key, limit=limit, ends=_ends())

    assert not leases.admit(key, limit=limit, ends=_ends())
    assert not leases.admit(key, limit=limit, ends=_ends())

    assert _stored_count(key) == limit
    # Another process, which has no lease, asks and is refused too; its ask is counted.
    assert not throttling._Leases().admit(key, limit=limit, ends=_ends())
    assert _stored_count(key) == limit + 1
