"""`manage.py retry_jobs`: operators retry failed jobs and requeue stuck ones; its selection,
its table and its refusals. What one retry does to one job is in tests/orchestration/test_resend.py.

Run in-process: the command through call_command, the retried job's tasks with `run_tasks()`
against the reference BlobService and JobService. Jobs are brought into an error state for real
where that path is what the test is about; the others are put in their status with the ORM, with
a real staged input whenever a retried job must then really run. Every run names its tenant or
its job ids: the test database is shared with the rest of the suite.
"""

import getpass
import re
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError

from frontservice.broker import process_broker
from jobs import staging
from jobs.models import Job
from tests.support.inprocess import body_of, run_tasks, run_until_settled, submit, wait_for_status
from tests.support.operator import rows, run_command
from tests.support.operator_jobs import JobMaker
from tests.support.processes import free_port

OPERATOR = f"operator:{getpass.getuser()}"


def retry_jobs(*args) -> str:
    """What the command prints; `rows()` of it are
    (id, tenant, status, action, new status, detail)."""
    return run_command("retry_jobs", *args)


def ids(output: str) -> list[str]:
    return [row[0] for row in rows(output)]


def transitions(job_id) -> list[tuple[str, str]]:
    return [(entry["from"], entry["to"]) for entry in Job.objects.get(pk=job_id).history]


@pytest.fixture
def make_job():
    """Put a job straight into a status, optionally with a staged input and an age."""
    maker = JobMaker()
    yield maker
    maker.clean_up()


def test_it_retries_a_stored_error_job_once_blobservice_is_back(api, services, alice, settings):
    # BlobService is unreachable: nothing listens on its address.
    settings.BLOBSERVICE_URL = f"http://127.0.0.1:{free_port()}"
    job_id = submit(api, alice, b"stored at last")["id"]
    run_until_settled(job_id)  # until the retry horizon ends the store step
    assert Job.objects.get(pk=job_id).status == "STORED_ERROR"
    settings.BLOBSERVICE_URL = services.urls["blob"]

    output = retry_jobs(job_id, "--by", "carol", "--reason", "BlobService is back")

    assert rows(output) == [
        (
            job_id,
            alice.tenant_id,
            "STORED_ERROR",
            "retry",
            "CREATED",
            "next: store the input in BlobService",
        )
    ]
    assert output.splitlines()[-1] == "1 retried, 0 requeued, 0 skipped."
    body = wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    assert body["error"] is None
    result = api.output_of(alice, job_id)
    assert result.status_code == 200
    assert body_of(result) == b"STORED AT LAST"
    job = Job.objects.get(pk=job_id)
    assert transitions(job_id) == [
        ("CREATED", "STORED_ERROR"),
        ("STORED_ERROR", "CREATED"),
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]
    retry = job.history[1]
    assert (retry["by"], retry["reason"]) == ("operator:carol", "BlobService is back")
    # FrontService stored the input once (the other PUT is JobService writing the output over
    # the same blob id), and JobService got the job once and ran it once.
    assert services.stats("blob")["by_id"][job_id]["PUT"] == 2
    assert services.stats("job")["by_id"][job_id]["PUT"] == 1
    assert services.stats("job")["executions"][job_id] == 1


def test_it_retries_a_submitted_error_job_and_it_completes(api, services, alice):
    services.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(api, alice, b"submitted at last")["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED_ERROR"

    # Neither ids nor --status: the failed jobs (here: the tenant's) are selected.
    output = retry_jobs("--tenant", alice.tenant_id)

    assert rows(output) == [
        (
            job_id,
            alice.tenant_id,
            "SUBMITTED_ERROR",
            "retry",
            "STORED",
            "next: submit to JobService",
        )
    ]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    assert transitions(job_id) == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED_ERROR"),
        ("SUBMITTED_ERROR", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]
    retry = Job.objects.get(pk=job_id).history[2]
    assert (retry["by"], retry["reason"]) == (OPERATOR, "retried with manage.py retry_jobs")
    # The blob was stored once and not again; JobService refused once, then took it and ran it.
    assert services.stats("blob")["by_id"][job_id]["PUT"] == 2  # the input, then the output
    assert services.stats("job")["by_id"][job_id]["PUT"] == 2
    assert services.stats("job")["executions"][job_id] == 1


def test_it_skips_a_stored_error_job_whose_staged_input_is_gone(alice, make_job):
    job = make_job(alice, "STORED_ERROR", data=b"cleaned up", age=timedelta(days=8))
    staging.discard(job.id)

    output = retry_jobs(job.id)

    assert rows(output) == [
        (
            str(job.id),
            alice.tenant_id,
            "STORED_ERROR",
            "skip",
            "STORED_ERROR",
            "staged input is gone; the user must submit again",
        )
    ]
    assert output.splitlines()[-1] == "0 retried, 0 requeued, 1 skipped."
    job.refresh_from_db()
    assert job.status == "STORED_ERROR" and job.history == []


def test_a_dry_run_changes_nothing_and_enqueues_nothing(services, alice, make_job):
    stuck = make_job(alice, "CREATED", data=b"stuck", age=timedelta(seconds=50))
    failed = make_job(alice, "STORED_ERROR", data=b"not yet", age=timedelta(seconds=40))
    refused = make_job(alice, "SUBMITTED_ERROR", blob_id="b", age=timedelta(seconds=30))
    jobs = (stuck, failed, refused)
    before = [(job.status, job.attempts, job.updated_at) for job in jobs]
    # Nothing runs tasks here: whatever is enqueued stays in the broker to be counted.
    queued = process_broker().queue_size()
    output = retry_jobs(
        "--tenant", alice.tenant_id, "--status", "STORED_ERROR", "SUBMITTED_ERROR", "CREATED",
        "--older-than", "0s", "--dry-run",
    )  # fmt: skip

    assert process_broker().queue_size() == queued
    for job in jobs:
        job.refresh_from_db()
    assert [(job.status, job.attempts, job.updated_at) for job in jobs] == before
    assert all(job.history == [] for job in jobs)
    assert output.splitlines()[0] == "Dry run: nothing is changed or enqueued."
    assert [(row[0], row[3], row[4]) for row in rows(output)] == [
        (str(stuck.id), "requeue", "CREATED"),
        (str(failed.id), "retry", "CREATED"),
        (str(refused.id), "retry", "STORED"),
    ]
    assert output.splitlines()[-1] == "Would retry 2, requeue 1, skip 0."
    assert staging.staged_path(failed.id).exists()


def test_it_selects_by_tenant_status_and_age_least_recently_changed_first(alice, mallory, make_job):
    oldest = make_job(alice, "SUBMITTED_ERROR", blob_id="b", age=timedelta(hours=5))
    final = make_job(alice, "EXECUTION_ERROR", age=timedelta(hours=4))
    old = make_job(alice, "STORED_ERROR", data=b"old", age=timedelta(hours=3))
    recent = make_job(alice, "STORED_ERROR", data=b"recent", age=timedelta(minutes=10))
    make_job(mallory, "STORED_ERROR", data=b"another tenant", age=timedelta(hours=6))
    stuck = make_job(alice, "CREATED", data=b"stuck", age=timedelta(seconds=50))

    def selected(*args) -> list[str]:
        return ids(retry_jobs("--tenant", alice.tenant_id, "--dry-run", *args))

    assert selected() == [str(oldest.id), str(old.id), str(recent.id)]
    assert selected("--older-than", "1h") == [str(oldest.id), str(old.id)]
    assert selected("--older-than", "4h") == [str(oldest.id)]
    assert selected("--limit", "2") == [str(oldest.id), str(old.id)]
    assert selected("--status", "STORED_ERROR") == [str(old.id), str(recent.id)]
    assert selected("--status", "created", "--older-than", "30s") == [str(stuck.id)]
    assert selected("--status", "CREATED", "--older-than", "1m") == []
    # Named ids are looked at whatever their status; the filters still apply.
    assert selected(final.id, oldest.id) == [str(oldest.id), str(final.id)]


def test_a_limited_run_retries_the_oldest_and_it_completes(api, services, alice, make_job):
    # deliveries=5 is past the orchestration's budget: only the retry's reset lets it run again.
    error = {"service": "blobservice", "message": "down", "status_code": None}
    first = make_job(
        alice, "STORED_ERROR", data=b"first", age=timedelta(hours=2), deliveries=5, error=error
    )
    second = make_job(alice, "STORED_ERROR", data=b"second", age=timedelta(hours=1))

    output = retry_jobs("--tenant", alice.tenant_id, "--older-than", "30m", "--limit", "1")

    assert ids(output) == [str(first.id)]
    body = wait_for_status(api, alice, str(first.id), {"EXECUTION_COMPLETED"})
    assert body["error"] is None
    first.refresh_from_db()
    assert first.deliveries == 0  # reset by the retry, and by the delivery that finished
    second.refresh_from_db()
    assert second.status == "STORED_ERROR" and second.history == []


def test_it_requeues_a_stuck_created_job_and_it_completes(api, services, alice, make_job):
    # Never enqueued, unchanged for 40 s: stuck by --older-than 30s.
    stuck = make_job(alice, "CREATED", data=b"lost task", age=timedelta(seconds=40))
    fresh = make_job(alice, "CREATED", data=b"being worked on")

    output = retry_jobs(
        "--status", "CREATED", "--older-than", "30s", "--tenant", alice.tenant_id,
        "--reason", "the worker lost it",
    )  # fmt: skip

    assert rows(output) == [
        (
            str(stuck.id),
            alice.tenant_id,
            "CREATED",
            "requeue",
            "CREATED",
            "next: store the input in BlobService",
        )
    ]
    assert output.splitlines()[-1] == "0 retried, 1 requeued, 0 skipped."
    wait_for_status(api, alice, str(stuck.id), {"EXECUTION_COMPLETED"})
    stuck.refresh_from_db()
    requeue = stuck.history[0]
    assert (requeue["from"], requeue["to"]) == ("CREATED", "CREATED")
    assert (requeue["by"], requeue["reason"]) == (OPERATOR, "the worker lost it")
    assert transitions(stuck.id)[1:] == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]
    fresh.refresh_from_db()
    assert fresh.status == "CREATED" and fresh.history == []


def test_it_skips_what_cannot_be_retried_and_says_why(alice, mallory, make_job):
    completed = make_job(alice, "EXECUTION_COMPLETED")
    failed = make_job(alice, "EXECUTION_ERROR")
    running = make_job(alice, "SUBMITTED")
    cancelling = make_job(alice, "CANCELLING")
    cancelled = make_job(alice, "CANCELLED")
    elsewhere = make_job(mallory, "STORED_ERROR", data=b"not this tenant's")
    unknown = uuid.uuid4()

    output = retry_jobs(
        completed.id,
        failed.id,
        running.id,
        cancelling.id,
        cancelled.id,
        elsewhere.id,
        unknown,
        "--tenant",
        alice.tenant_id,
    )

    assert {row[0]: (row[3], row[5]) for row in rows(output)} == {
        str(completed.id): ("skip", "final; nothing to retry"),
        str(failed.id): ("skip", "final; nothing to retry"),
        str(running.id): ("skip", "running in JobService; its status is refreshed from there"),
        str(cancelling.id): (
            "skip",
            "being cancelled; the reconciler sends the cancel to JobService again",
        ),
        str(cancelled.id): ("skip", "cancelled by its owner; never retried"),
        str(elsewhere.id): ("skip", "not selected by --status/--older-than/--tenant/--limit"),
        str(unknown): ("skip", "no such job"),
    }
    assert output.splitlines()[-1] == "0 retried, 0 requeued, 7 skipped."
    for job in (completed, failed, running, cancelling, cancelled, elsewhere):
        status = job.status
        job.refresh_from_db()
        assert job.status == status and job.history == []


def test_named_jobs_in_flight_need_no_age(api, services, alice, make_job):
    stuck = make_job(alice, "CREATED", data=b"named")

    output = retry_jobs(stuck.id, "--status", "CREATED", "--by", "dave")

    assert [(row[0], row[3]) for row in rows(output)] == [(str(stuck.id), "requeue")]
    wait_for_status(api, alice, str(stuck.id), {"EXECUTION_COMPLETED"})
    assert Job.objects.get(pk=stuck.pk).history[0]["by"] == "operator:dave"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-a-job"], "argument JOB_ID: 'not-a-job' is not a job id (a UUID)"),
        (["--older-than", "5x"], "'5x' is not a duration"),
        (["--older-than", "h"], "'h' is not a duration"),
        (["--older-than=-1h"], "'-1h' is not a duration"),
        (["--limit", "0"], "'0' is not a positive whole number"),
        (["--status", "EXECUTION_ERROR"], "invalid choice: 'EXECUTION_ERROR'"),
        (["--status", "CREATED"], "--status CREATED selects jobs the worker may still be on"),
        (["--status", "STORED", "STORED_ERROR", "--tenant", "t"], "add --older-than"),
    ],
)
def test_it_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        retry_jobs(*args)
