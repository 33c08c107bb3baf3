"""The job document (jobs/serializers.py): its timestamps, attempts, input facts, error codes,
and Retry-After, as the API answers it (in-process)."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from jobs.models import Job
from jobs.queries import job_of_owner
from jobs.serializers import JobSerializer
from tests.support.inprocess import run_tasks, submit, wait_for_status


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _history_at(job_id: str, status: str) -> datetime:
    (entry,) = [e for e in Job.objects.get(pk=job_id).history if e["to"] == status]
    return datetime.fromisoformat(entry["at"])


def test_a_new_job_has_not_been_submitted_or_finished(api, alice):
    body = submit(api, alice, b"twelve bytes", content_type="text/plain")

    assert body["submitted_at"] is None and body["finished_at"] is None
    assert body["attempts"] == 0
    assert body["input_size"] == 12
    assert body["content_type"] == "text/plain"


def test_a_completed_job_says_when_it_was_submitted_and_finished(api, alice):
    job_id = submit(api, alice, b"document me", content_type="application/x-doc")["id"]

    body = wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})

    job = Job.objects.get(pk=job_id)
    assert _at(body["submitted_at"]) == _history_at(job_id, "SUBMITTED")
    assert _at(body["finished_at"]) == _history_at(job_id, "EXECUTION_COMPLETED")
    assert _at(body["created_at"]) <= _at(body["submitted_at"]) <= _at(body["finished_at"])
    # Attempts count the current step's failures: none left once the job is past its steps.
    assert body["attempts"] == job.attempts == 0
    assert body["next_attempt_at"] is None and body["last_error"] is None
    assert body["input_size"] == len(b"document me") == job.input_size
    assert body["content_type"] == "application/x-doc"
    assert body["error"] is None
    assert not api.status_of(alice, job_id).has_header("Retry-After")
    # The listing shows the same document.
    listed = api.get("/api/v1/job", alice).json()
    assert listed["results"] == [body]


def test_a_failed_execution_has_the_error_code_execution_failed(api, alice):
    job_id = submit(api, alice, b"#fail here")["id"]

    body = wait_for_status(api, alice, job_id, {"EXECUTION_ERROR"})

    assert body["error"]["code"] == "execution_failed"
    assert body["error"]["service"] == "jobservice"
    assert _at(body["finished_at"]) == _history_at(job_id, "EXECUTION_ERROR")
    assert body["submitted_at"] is not None
    assert not api.status_of(alice, job_id).has_header("Retry-After")


def test_a_job_still_running_carries_retry_after(api, services, alice):
    services.faults("job", execution_delay=30)
    job_id = submit(api, alice, b"slow")["id"]
    try:
        run_tasks()
        assert Job.objects.get(pk=job_id).status == "SUBMITTED"
        response = api.status_of(alice, job_id)
    finally:
        services.cancel_remote(job_id)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "SUBMITTED"
    assert 1 <= int(response["Retry-After"]) <= 30
    assert body["submitted_at"] is not None and body["finished_at"] is None
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"


def test_a_retried_job_reports_the_times_of_its_current_run(api, services, alice):
    services.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(api, alice, b"refused, then retried")["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED_ERROR"

    failed = api.status_of(alice, job_id).json()

    assert failed["error"]["code"] == "submit_failed"
    assert failed["submitted_at"] is None
    assert _at(failed["finished_at"]) == _history_at(job_id, "SUBMITTED_ERROR")

    call_command("retry_jobs", job_id, "--by", "carol", "--reason", "fixed", stdout=io.StringIO())
    body = wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})

    assert body["error"] is None
    assert _at(body["submitted_at"]) == _history_at(job_id, "SUBMITTED")
    assert _at(body["finished_at"]) == _history_at(job_id, "EXECUTION_COMPLETED")
    assert _at(body["finished_at"]) > _at(failed["finished_at"])


HISTORY = [
    {
        "at": "2026-01-05T10:00:00.123000+00:00",
        "from": None,
        "to": "CREATED",
        "reason": "",
        "by": "",
    },
    {"at": "2026-01-05T10:00:01+00:00", "from": "CREATED", "to": "STORED", "reason": "", "by": ""},
    {
        "at": "2026-01-05T10:00:02+00:00",
        "from": "STORED",
        "to": "SUBMITTED",
        "reason": "",
        "by": "",
    },
]


@pytest.mark.parametrize(
    "fields",
    [
        {
            "status": "EXECUTION_COMPLETED",
            "history": [*HISTORY, {**HISTORY[2], "to": "EXECUTION_COMPLETED"}],
        },
        {
            "status": "EXECUTION_ERROR",
            "history": [*HISTORY, {**HISTORY[2], "to": "EXECUTION_ERROR"}],
            "error": {"service": "jobservice", "message": "boom", "status_code": None},
            "callback_url": "https://hooks.example.com/done",
        },
        {
            "status": "CREATED",
            "attempts": 2,
            "next_attempt_at": datetime(2026, 1, 5, 10, 0, 3, 456000, tzinfo=UTC),
            "error": {
                "service": "blobservice",
                "message": "ConnectionError: x",
                "status_code": None,
            },
        },
        {"status": "STORED", "history": []},
    ],
    ids=["completed", "failed-with-callback", "waiting-for-a-retry", "no-history"],
)
def test_the_document_is_what_the_serializer_fields_make_of_the_job(make_job, fields):
    """job_document (the plain function every answer uses) against DRF's field-by-field
    representation of the same job, loaded both through the ORM and as the API's reads load it."""
    job = make_job(input_size=12, content_type="text/plain", **fields)
    request = APIRequestFactory().get("/api/v1/job", HTTP_HOST="localhost")
    as_read = job_of_owner(tenant_id=job.tenant_id, sub=job.sub, job_id=job.id)
    from_orm = Job.objects.get(pk=job.pk)

    for loaded in (as_read, from_orm):
        serializer = JobSerializer(loaded, context={"request": request})
        by_fields = serializers.ModelSerializer.to_representation(serializer, loaded)
        assert serializer.data == by_fields
    assert JobSerializer(as_read).data == JobSerializer(from_orm).data
    assert by_fields["links"]["status"] == f"http://localhost/api/v1/job/{job.id}/status"
