"""orchestration.cancel.job_cancel_downstream: how JobService's answer ends a CANCELLING job.

JobService is mocked at the HTTP boundary (`responses`) for the answers the reference service
does not give (a `job_final` without the job, a cancel answered with a running job); the real
paths are in tests/api/test_cancel.py.
"""

import uuid
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from jobs.models import Job
from orchestration.cancel import job_cancel_downstream

BASE = "http://jobservice.test"


@pytest.fixture(autouse=True)
def jobservice_url(settings):
    settings.JOBSERVICE_URL = BASE
    settings.Q_TIMEOUT = 60


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def cancelling():
    job = Job(tenant_id="t", sub=f"s-{uuid.uuid4().hex[:8]}", status="CANCELLING")
    job.remote_job_id = str(job.id)
    job.save(force_insert=True)
    yield job
    Job.objects.filter(pk=job.pk).delete()


def url(job: Job) -> str:
    return f"{BASE}/jobs/{job.id}"


def remote(job: Job, status: str, error=None) -> dict:
    return {"id": str(job.id), "blob_id": str(job.id), "status": status, "error": error}


def age(job: Job, seconds: float) -> Job:
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))
    job.refresh_from_db()
    return job


def test_it_ends_cancelled_when_jobservice_cancels(mocked, cancelling):
    mocked.delete(url(cancelling), json=remote(cancelling, "CANCELLED"))

    job = job_cancel_downstream(cancelling)

    assert job.status == "CANCELLED" and job.error is None
    assert job.history[-1]["reason"] == "JobService reported CANCELLED on cancel"


def test_a_job_final_without_the_job_is_looked_up(mocked, cancelling):
    mocked.delete(url(cancelling), json={"code": "job_final"}, status=409)
    mocked.get(url(cancelling), json=remote(cancelling, "FAILED", error="boom"))

    job = job_cancel_downstream(cancelling)

    assert job.status == "EXECUTION_ERROR"
    assert job.error["service"] == "jobservice" and job.error["message"] == "boom"


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503, "json": {"code": "unavailable"}},
        {"status": 200, "json": None},  # a cancel answered with a job still running
    ],
    ids=["unavailable", "still-running"],
)
def test_it_stays_cancelling_when_jobservice_does_not_end_it(mocked, cancelling, answer):
    body = answer["json"] if answer["json"] is not None else remote(cancelling, "RUNNING")
    mocked.delete(url(cancelling), json=body, status=answer["status"])

    job = job_cancel_downstream(cancelling)

    assert job.status == "CANCELLING"
    assert Job.objects.get(pk=job.pk).history == []


def test_not_in_jobservice_while_a_submit_may_be_in_flight_stays_cancelling(mocked, cancelling):
    mocked.delete(url(cancelling), json={"code": "job_not_found"}, status=404)

    job = job_cancel_downstream(age(cancelling, 30))  # younger than Q_TIMEOUT

    assert job.status == "CANCELLING"


def test_not_in_jobservice_once_no_submit_can_be_in_flight_is_cancelled(mocked, cancelling):
    mocked.delete(url(cancelling), json={"code": "job_not_found"}, status=404)

    job = job_cancel_downstream(age(cancelling, 61))

    assert job.status == "CANCELLED"
    assert job.history[-1]["reason"] == "cancelled; JobService never had it"


def test_not_in_jobservice_after_the_workers_own_submit_is_cancelled(mocked, cancelling):
    mocked.delete(url(cancelling), json={"code": "job_not_found"}, status=404)

    job = job_cancel_downstream(cancelling, submit_over=True)

    assert job.status == "CANCELLED"


def test_a_job_no_longer_cancelling_is_left_alone(mocked, cancelling):
    Job.objects.filter(pk=cancelling.pk).update(status="CANCELLED")
    cancelling.refresh_from_db()

    assert job_cancel_downstream(cancelling).status == "CANCELLED"
    assert len(mocked.calls) == 0
