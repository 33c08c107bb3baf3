"""orchestration.resend.job_resend: one operator retry (or requeue) of one job, as `manage.py
retry_jobs` and the admin's action run it. The command's selection and table are in
tests/jobs/management/test_retry_jobs.py.

In-process, on the test database, with the retried jobs' tasks run by `run_tasks()` against the
reference services.
"""

from datetime import timedelta

import pytest

from frontservice.broker import process_broker
from jobs.models import Job
from orchestration.resend import ResendOutcome, job_resend
from tests.support.inprocess import wait_for_status
from tests.support.operator_jobs import JobMaker


@pytest.fixture
def make_job():
    maker = JobMaker()
    yield maker
    maker.clean_up()


def test_of_two_operators_retrying_the_same_job_one_wins(api, services, alice, make_job):
    failed = make_job(alice, "STORED_ERROR", data=b"raced")
    stuck = make_job(alice, "CREATED", data=b"raced too", age=timedelta(seconds=40))
    # Both operators read the jobs before either acts.
    stale_failed, stale_stuck = Job.objects.get(pk=failed.pk), Job.objects.get(pk=stuck.pk)

    assert job_resend(failed, by="operator:one", reason="first").action == "retry"
    assert job_resend(stuck, by="operator:one", reason="first").action == "requeue"
    assert job_resend(stale_failed, by="operator:two", reason="second") == ResendOutcome(
        failed.id, "STORED_ERROR", "skip", "STORED_ERROR", "changed concurrently"
    )
    # A requeue changes no status, so it is the changed `updated_at` that tells.
    assert job_resend(stale_stuck, by="operator:two", reason="second") == ResendOutcome(
        stuck.id, "CREATED", "skip", "CREATED", "changed concurrently"
    )

    for job in (failed, stuck):
        wait_for_status(api, alice, str(job.id), {"EXECUTION_COMPLETED"})
        job.refresh_from_db()
        assert [entry["by"] for entry in job.history if entry["by"].startswith("operator:")] == [
            "operator:one"
        ]
    # One orchestration each, run to the end: the loser enqueued nothing.
    assert services.stats("job")["executions"][str(failed.id)] == 1
    assert services.stats("job")["executions"][str(stuck.id)] == 1


def test_a_retry_starts_afresh_and_enqueues_the_job_once(services, alice, make_job):
    error = {"service": "jobservice", "message": "refused", "status_code": 400}
    job = make_job(alice, "SUBMITTED_ERROR", blob_id="b", attempts=3, error=error)
    queued = process_broker().queue_size()

    outcome = job_resend(job, by="operator:erin", reason="JobService fixed")

    assert outcome == ResendOutcome(
        job.id, "SUBMITTED_ERROR", "retry", "STORED", "next: submit to JobService"
    )
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == ("STORED", 0, None)
    [entry] = job.history
    assert (entry["from"], entry["to"], entry["by"], entry["reason"]) == (
        "SUBMITTED_ERROR",
        "STORED",
        "operator:erin",
        "JobService fixed",
    )
    assert process_broker().queue_size() == queued + 1


def test_a_dry_run_says_what_would_be_done_and_does_nothing(services, alice, make_job):
    job = make_job(alice, "STORED_ERROR", data=b"not yet", attempts=2)
    queued = process_broker().queue_size()

    outcome = job_resend(job, by="operator:erin", reason="check", dry_run=True)

    assert outcome == ResendOutcome(
        job.id, "STORED_ERROR", "retry", "CREATED", "next: store the input in BlobService"
    )
    job.refresh_from_db()
    assert (job.status, job.attempts, job.history) == ("STORED_ERROR", 2, [])
    assert process_broker().queue_size() == queued
