"""The job document: its timestamps, attempts, input facts, error codes, and Retry-After."""

import io
from datetime import datetime

import requests
from django.core.management import call_command

from jobs.models import Job
from tests.support.api import status_of, submit, wait_for_status, wait_for_stored_status


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _history_at(job_id: str, status: str) -> datetime:
    (entry,) = [e for e in Job.objects.get(pk=job_id).history if e["to"] == status]
    return datetime.fromisoformat(entry["at"])


def test_a_new_job_has_not_been_submitted_or_finished(stack, alice):
    body = submit(stack, alice, b"twelve bytes", **{"Content-Type": "text/plain"})

    assert body["submitted_at"] is None and body["finished_at"] is None
    assert body["attempts"] == 0
    assert body["input_size"] == 12
    assert body["content_type"] == "text/plain"


def test_a_completed_job_says_when_it_was_submitted_and_finished(stack, alice):
    job_id = submit(stack, alice, b"document me", **{"Content-Type": "application/x-doc"})["id"]

    body = wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    job = Job.objects.get(pk=job_id)
    assert _at(body["submitted_at"]) == _history_at(job_id, "SUBMITTED")
    assert _at(body["finished_at"]) == _history_at(job_id, "EXECUTION_COMPLETED")
    assert _at(body["created_at"]) <= _at(body["submitted_at"]) <= _at(body["finished_at"])
    assert body["attempts"] == job.attempts >= 1
    assert body["input_size"] == len(b"document me") == job.input_size
    assert body["content_type"] == "application/x-doc"
    assert body["error"] is None
    assert "Retry-After" not in status_of(stack, alice, job_id).headers
    # The listing shows the same document.
    listed = requests.get(f"{stack.api}/api/v1/job", headers=alice.headers, timeout=30).json()
    assert listed["results"] == [body]


def test_a_failed_execution_has_the_error_code_execution_failed(stack, alice):
    job_id = submit(stack, alice, b"#fail here")["id"]

    body = wait_for_status(stack, alice, job_id, {"EXECUTION_ERROR"})

    assert body["error"]["code"] == "execution_failed"
    assert body["error"]["service"] == "jobservice"
    assert _at(body["finished_at"]) == _history_at(job_id, "EXECUTION_ERROR")
    assert body["submitted_at"] is not None
    assert "Retry-After" not in status_of(stack, alice, job_id).headers


def test_a_job_still_running_carries_retry_after(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, b"slow")["id"]
    try:
        wait_for_stored_status(job_id, {"SUBMITTED"})
        response = status_of(stack, alice, job_id)
    finally:
        stack.cancel_remote(job_id)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "SUBMITTED"
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert body["submitted_at"] is not None and body["finished_at"] is None
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"


def test_a_retried_job_reports_the_times_of_its_current_run(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(stack, alice, b"refused, then retried")["id"]
    wait_for_stored_status(job_id, {"SUBMITTED_ERROR"})

    failed = status_of(stack, alice, job_id).json()

    assert failed["error"]["code"] == "submit_failed"
    assert failed["submitted_at"] is None
    assert _at(failed["finished_at"]) == _history_at(job_id, "SUBMITTED_ERROR")

    call_command("retry_jobs", job_id, "--by", "carol", "--reason", "fixed", stdout=io.StringIO())
    body = wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    assert body["error"] is None
    assert _at(body["submitted_at"]) == _history_at(job_id, "SUBMITTED")
    assert _at(body["finished_at"]) == _history_at(job_id, "EXECUTION_COMPLETED")
    assert _at(body["finished_at"]) > _at(failed["finished_at"])
