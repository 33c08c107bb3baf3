"""A downstream outage through the running stack: a real cluster with its dispatcher, JobService
failing every submit for real (its faults), jobs waiting in their status, not failing, and
completing with no operator once it is back; and the horizon, past which they do fail."""

import time

import pytest
from django.conf import settings

from jobs.models import Job
from tests.support.api import submit, wait_for_status

# Longer than the worker tier ever waited before giving up (a handful of attempts over seconds).
OUTAGE_SECONDS = 12


@pytest.fixture
def patient_stack(quiet_stack):
    """The stack with a worker whose retry horizon outlasts the outage; the usual one after."""
    with quiet_stack.worker_with(DOWNSTREAM_RETRY_HORIZON="300") as stack:
        yield stack


def test_jobs_wait_out_a_jobservice_outage_and_complete_once_it_is_back(patient_stack, alice):
    stack = patient_stack
    stack.faults("job", fail_rate=1.0, status=503, methods=["PUT"])
    first = [submit(stack, alice, f"before {n}".encode())["id"] for n in range(4)]
    time.sleep(OUTAGE_SECONDS / 2)
    # BlobService is healthy: the store step of jobs submitted during the outage goes on.
    later = [submit(stack, alice, f"during {n}".encode())["id"] for n in range(4)]
    time.sleep(OUTAGE_SECONDS / 2)

    for job_id in first + later:
        job = _waiting(job_id)
        assert job.status == "STORED", (job_id, job.status)
        assert job.next_attempt_at is not None and job.blob_id == job_id
    waited = Job.objects.get(pk=first[0])
    assert waited.attempts >= 1 and waited.error["status_code"] == 503
    # The circuit opened: JobService got the failures that opened it and one probe per interval,
    # not one submit per job per backoff step (a few more: workers racing the opening).
    puts = sum(c.get("PUT", 0) for c in stack.stats("job")["by_id"].values())
    probes = OUTAGE_SECONDS / settings.CIRCUIT_PROBE_INTERVAL
    assert puts <= settings.CIRCUIT_FAILURE_THRESHOLD + probes + 4

    stack.clear_faults()
    for job_id in first + later:
        wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=60)
    assert stack.stats("job")["executions"] == {job_id: 1 for job_id in first + later}


def test_past_the_horizon_a_job_ends_in_its_error_state(quiet_stack, alice):
    # The stack's worker gives up after DOWNSTREAM_RETRY_HORIZON = 3 s (tests/embedded_database.py).
    quiet_stack.faults("job", fail_rate=1.0, status=503, methods=["PUT"])

    job_id = submit(quiet_stack, alice, b"never submitted")["id"]
    body = wait_for_status(quiet_stack, alice, job_id, {"SUBMITTED_ERROR"}, timeout=60)

    job = Job.objects.get(pk=job_id)
    assert body["error"]["code"] == "submit_failed" and body["error"]["status_code"] == 503
    assert job.error["attempts"] == job.attempts >= 1
    assert job.next_attempt_at is None


def _waiting(job_id: str, timeout: float = 10) -> Job:
    """The job once it shows its next attempt's due time. A job the dispatcher has just handed to
    a worker (the probe, or one released as its due time came) shows none until that task has
    recorded its outcome: in flight for a moment, not lost."""
    deadline = time.monotonic() + timeout
    job = Job.objects.get(pk=job_id)
    while job.next_attempt_at is None and job.status == "STORED" and time.monotonic() < deadline:
        time.sleep(0.05)
        job.refresh_from_db()
    return job
