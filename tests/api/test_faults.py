"""Transient downstream failures are retried inside the task; permanent ones fail at once."""

from jobs import staging
from jobs.models import Job
from tests.support.api import status_of, submit, wait_for_status, wait_for_stored_status


def _reasons(job_id) -> list[str]:
    return [entry["reason"] for entry in Job.objects.get(pk=job_id).history]


def test_blobservice_500s_are_retried_and_the_job_completes(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("blob", fail_next=2, status=500, methods=["PUT"])

    job_id = submit(stack, alice, b"retry me")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    assert stack.stats("blob")["faults_injected"] == 2
    assert "input stored in BlobService (3 attempts)" in _reasons(job_id)
    assert stack.stats("job")["executions"][job_id] == 1


def test_a_429_with_retry_after_is_honoured(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", fail_next=1, status=429, retry_after=1, methods=["PUT"])

    job_id = submit(stack, alice, b"throttled")["id"]
    job = wait_for_stored_status(job_id, {"SUBMITTED", "EXECUTION_COMPLETED"})

    stored, submitted = (entry for entry in job.history if entry["to"] in {"STORED", "SUBMITTED"})
    assert submitted["reason"] == "submitted to JobService (2 attempts)"
    # Retry-After: 1 was honoured between the two attempts (no jitter shortens it).
    seconds = _seconds_between(stored["at"], submitted["at"])
    assert seconds >= 1.0
    assert stack.stats("job")["by_id"][job_id]["PUT"] == 2


def test_a_permanent_4xx_fails_at_once(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("blob", fail_next=1, status=403, methods=["PUT"])

    job_id = submit(stack, alice, b"forbidden")["id"]
    job = wait_for_stored_status(job_id, {"STORED_ERROR"})

    assert job.error["status_code"] == 403 and job.error["attempts"] == 1
    assert stack.stats("blob")["by_id"][job_id]["PUT"] == 1


def test_a_service_that_keeps_failing_ends_in_error_with_the_attempts_and_last_error(
    quiet_stack, alice
):
    stack = quiet_stack
    stack.faults("job", fail_rate=1.0, status=503, methods=["PUT"])

    job_id = submit(stack, alice, b"never submitted")["id"]
    job = wait_for_stored_status(job_id, {"SUBMITTED_ERROR"})

    assert job.error["service"] == "jobservice" and job.error["status_code"] == 503
    # Bounded by attempts (DOWNSTREAM_RETRY_ATTEMPTS) or by the deadline, whichever comes first.
    assert 2 <= job.error["attempts"] <= 6
    assert stack.stats("job")["by_id"][job_id]["PUT"] == job.error["attempts"]
    body = status_of(stack, alice, job_id).json()
    assert body["status"] == "SUBMITTED_ERROR" and body["error"]["status_code"] == 503


def test_a_blobservice_slower_than_the_read_timeout_is_a_retried_timeout(quiet_stack, alice):
    stack = quiet_stack
    # Slower than DOWNSTREAM_READ_TIMEOUT (3 s in the tests) on every PUT.
    stack.faults("blob", delay=3.5, methods=["PUT"])

    job_id = submit(stack, alice, b"slow")["id"]
    job = wait_for_stored_status(job_id, {"STORED_ERROR"}, timeout=40)

    assert "timed out" in job.error["message"].lower() or "timeout" in job.error["message"].lower()
    assert job.error["status_code"] is None and job.error["attempts"] >= 2
    # The input is kept for an operator retry.
    assert staging.staged_path(job_id).read_bytes() == b"slow"


def _seconds_between(first: str, second: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()
