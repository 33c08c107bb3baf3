"""POST /api/v1/job/{id}/cancel: every path, against the real stack.

What reached the reference services is read from their /_control/stats (requests by id and
method) and from their own API; the stored state from MongoDB.
"""

import time
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from django_q.models import Failure, Success

from jobs import staging
from jobs.models import Job
from orchestration import services as orchestration
from orchestration.reconcile import reconcile
from tests.support.api import Owner, status_of, submit, wait_for_status, wait_for_stored_status


def cancel(stack, owner: Owner, job_id: str) -> requests.Response:
    return requests.post(
        f"{stack.api}/api/v1/job/{job_id}/cancel", headers=owner.headers, timeout=30
    )


def output_of(stack, owner: Owner, job_id: str) -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/job/{job_id}/output", headers=owner.headers, timeout=30
    )


def transitions(job_id) -> list[tuple[str, str]]:
    return [(entry["from"], entry["to"]) for entry in Job.objects.get(pk=job_id).history]


def requests_for(stack, service: str, job_id: str) -> dict:
    """{method: count} of the API requests the service got for this id."""
    return stack.stats(service)["by_id"].get(str(job_id), {})


def remote_job(stack, job_id: str) -> requests.Response:
    return requests.get(f"{stack.urls['job']}/jobs/{job_id}", timeout=10)


def blob(stack, job_id: str) -> requests.Response:
    return requests.get(f"{stack.urls['blob']}/blobs/{job_id}", timeout=10)


def wait_until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def a_job(owner: Owner, status: str, **fields) -> Job:
    """A job put straight into a status, with no task enqueued for it."""
    return Job.objects.create(tenant_id=owner.tenant_id, sub=owner.sub, status=status, **fields)


# --- not submitted yet: cancelled locally, never reaches JobService ---------------------------


def test_a_created_job_is_cancelled_at_once_and_never_orchestrated(quiet_stack, alice):
    stack = quiet_stack
    job = a_job(alice, "CREATED")
    staging.staged_path(job.id).write_bytes(b"never stored")

    response = cancel(stack, alice, str(job.id))

    assert response.status_code == 200, response.text
    # Its staged input went with the cancel, not at the reconciler's next cleanup.
    assert not staging.staged_path(job.id).exists()
    body = response.json()
    assert body["status"] == "CANCELLED" and body["error"] is None
    assert body["links"]["cancel"].endswith(f"/api/v1/job/{job.id}/cancel")
    # A task delivered late (lost, redelivered) finds nothing to do.
    orchestration.job_orchestrate(job_id=job.id)
    job.refresh_from_db()
    assert job.status == "CANCELLED" and job.attempts == 0
    assert transitions(job.id) == [("CREATED", "CANCELLED")]
    assert job.history[0]["by"] == "owner"
    assert requests_for(stack, "blob", job.id) == {}
    assert requests_for(stack, "job", job.id) == {}


def test_a_worker_mid_upload_loses_to_the_cancel_and_submits_nothing(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("blob", delay=3.0, methods=["PUT"])
    job_id = submit(stack, alice, b"cancelled while uploading")["id"]
    wait_until(lambda: "PUT" in requests_for(stack, "blob", job_id), "the upload started")

    response = cancel(stack, alice, job_id)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    # The upload ends, its CREATED -> STORED fails, and the worker deletes the blob it wrote.
    wait_until(lambda: "DELETE" in requests_for(stack, "blob", job_id), "the blob deleted")
    assert blob(stack, job_id).status_code == 404
    assert not staging.staged_path(job_id).exists()
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert transitions(job_id) == [("CREATED", "CANCELLED")]
    assert requests_for(stack, "job", job_id) == {}


def test_a_worker_that_opens_the_input_after_the_cancel_leaves_the_job_cancelled(
    quiet_stack, alice
):
    stack = quiet_stack
    # The first upload is slow and then fails, so the worker's next attempt opens the staged
    # input again, after the cancel has deleted it.
    stack.faults("blob", fail_next=1, status=503, delay=2.0, methods=["PUT"])
    job_id = submit(stack, alice, b"cancelled between two uploads")["id"]
    wait_until(lambda: "PUT" in requests_for(stack, "blob", job_id), "the upload started")

    response = cancel(stack, alice, job_id)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert not staging.staged_path(job_id).exists()
    # The worker's task ends normally (no crash on the missing file) ...
    name = f"orchestrate-{job_id}"
    wait_until(lambda: Success.objects.filter(name=name).exists(), "the task finished")
    assert not Failure.objects.filter(name=name).exists()
    # ... having sent no second upload, and moved the job nowhere.
    job = Job.objects.get(pk=job_id)
    assert job.status == "CANCELLED" and job.error is None
    assert transitions(job_id) == [("CREATED", "CANCELLED")]
    assert requests_for(stack, "blob", job_id).get("PUT") == 1
    assert blob(stack, job_id).status_code == 404
    assert requests_for(stack, "job", job_id) == {}


def test_a_job_not_cancelled_whose_input_is_gone_ends_stored_error(quiet_stack, alice):
    # The counterpart of the above: no cancel, so the missing input is the job's own error.
    job = a_job(alice, "CREATED")

    orchestration.job_orchestrate(job_id=job.id)

    job.refresh_from_db()
    assert job.status == "STORED_ERROR"
    assert job.error["message"] == "staged input is missing"
    assert transitions(job.id) == [("CREATED", "STORED_ERROR")]
    assert requests_for(quiet_stack, "blob", job.id) == {}


def test_a_stored_job_cancelled_before_its_submit_is_never_submitted(quiet_stack, alice):
    stack = quiet_stack
    job = Job(tenant_id=alice.tenant_id, sub=alice.sub, status="STORED")
    job_id = job.blob_id = str(job.id)
    job.save(force_insert=True)
    requests.put(f"{stack.urls['blob']}/blobs/{job_id}", data=b"stored", timeout=10)
    stale = Job.objects.get(pk=job.pk)  # what a worker read just before the cancel

    response = cancel(stack, alice, job_id)
    # The worker carries on from what it read: its claim of the submit fails.
    orchestration.job_submit_to_jobservice(job=stale)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert transitions(job_id) == [("STORED", "CANCELLED")]
    assert requests_for(stack, "job", job_id) == {}
    assert remote_job(stack, job_id).status_code == 404
    assert blob(stack, job_id).status_code == 404  # deleted by the worker, best effort


def test_a_cancel_during_the_submit_is_sent_to_jobservice_once_the_submit_is_over(
    quiet_stack, alice
):
    stack = quiet_stack
    stack.faults("job", delay=3.0, methods=["PUT"])
    job_id = submit(stack, alice, b"cancelled while submitting")["id"]
    wait_until(lambda: "PUT" in requests_for(stack, "job", job_id), "the submit started")

    response = cancel(stack, alice, job_id)

    # The worker claimed the submit, so JobService may get the job: cancelled there, and
    # JobService does not have it yet (404), so the cancel is not confirmed.
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "CANCELLING"
    # The worker's PUT lands, its STORED -> SUBMITTED fails, and it sends the cancel itself.
    job = wait_for_stored_status(job_id, {"CANCELLED"})
    assert requests_for(stack, "job", job_id) == {"PUT": 1, "DELETE": 2}
    assert remote_job(stack, job_id).json()["status"] == "CANCELLED"
    assert transitions(job_id) == [
        ("CREATED", "STORED"),
        ("STORED", "CANCELLING"),
        ("CANCELLING", "CANCELLED"),
    ]
    assert job.remote_job_id == job_id


def test_a_claimed_submit_whose_worker_died_is_cancelled_once_no_put_can_come(quiet_stack, alice):
    stack = quiet_stack
    # The worker claimed the submit and died before its PUT: nobody will send it now.
    job = Job(tenant_id=alice.tenant_id, sub=alice.sub, status="STORED")
    job_id = job.blob_id = job.remote_job_id = str(job.id)
    job.save(force_insert=True)

    response = cancel(stack, alice, job_id)
    report = reconcile(refresh_after=timedelta(0))

    # JobService does not have it, but a PUT could still be on its way: not concluded yet.
    assert response.status_code == 202 and response.json()["status"] == "CANCELLING"
    assert job_id in report.cancel_retried
    assert Job.objects.get(pk=job_id).status == "CANCELLING"

    # Longer CANCELLING than a task may run (Q_TIMEOUT): no PUT can come any more.
    past = timezone.now() - timedelta(seconds=settings.Q_TIMEOUT + 1)
    Job.objects.filter(pk=job_id).update(updated_at=past, checked_at=None)
    reconcile(refresh_after=timedelta(0))

    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert requests_for(stack, "job", job_id) == {"DELETE": 3}
    assert transitions(job_id) == [("STORED", "CANCELLING"), ("CANCELLING", "CANCELLED")]


# --- submitted: cancelled in JobService ------------------------------------------------------


@pytest.fixture
def running_job(quiet_stack, alice) -> str:
    """A SUBMITTED job that stays QUEUED in JobService for 30 s."""
    quiet_stack.faults("job", execution_delay=30)
    job_id = submit(quiet_stack, alice, b"long running")["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    yield job_id
    quiet_stack.cancel_remote(job_id)


def test_a_submitted_job_is_cancelled_in_jobservice(quiet_stack, alice, running_job):
    stack, job_id = quiet_stack, running_job

    response = cancel(stack, alice, job_id)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["error"] is None
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert remote_job(stack, job_id).json()["status"] == "CANCELLED"
    assert requests_for(stack, "job", job_id)["DELETE"] == 1
    assert transitions(job_id)[-2:] == [("SUBMITTED", "CANCELLING"), ("CANCELLING", "CANCELLED")]


def test_cancelling_again_answers_the_same_and_sends_nothing(quiet_stack, alice, running_job):
    stack, job_id = quiet_stack, running_job
    assert cancel(stack, alice, job_id).status_code == 200
    before = requests_for(stack, "job", job_id)

    again = cancel(stack, alice, job_id)

    assert again.status_code == 200
    assert again.json()["status"] == "CANCELLED"
    assert requests_for(stack, "job", job_id) == before
    assert transitions(job_id).count(("CANCELLING", "CANCELLED")) == 1


def test_the_output_of_a_cancelled_job_is_404_job_cancelled(quiet_stack, alice, running_job):
    stack, job_id = quiet_stack, running_job
    cancel(stack, alice, job_id)
    before = requests_for(stack, "job", job_id)

    output = output_of(stack, alice, job_id)
    status = status_of(stack, alice, job_id)

    assert output.status_code == 404
    assert output.headers["Content-Type"] == "application/problem+json"
    assert output.json()["code"] == "job_cancelled"
    assert status.status_code == 200 and status.json()["status"] == "CANCELLED"
    # Final: answered locally.
    assert requests_for(stack, "job", job_id) == before


def test_a_cancel_while_jobservice_fails_is_202_and_finished_later(quiet_stack, alice, running_job):
    stack, job_id = quiet_stack, running_job
    stack.faults("job", execution_delay=30, status=503, fail_rate=1.0, methods=["DELETE"])

    response = cancel(stack, alice, job_id)
    again = cancel(stack, alice, job_id)
    polled = status_of(stack, alice, job_id)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "CANCELLING"
    # The repeat sends nothing; a status request tries the cancel again (and fails again).
    assert again.status_code == 202 and again.json()["status"] == "CANCELLING"
    assert polled.status_code == 200 and polled.json()["status"] == "CANCELLING"
    assert requests_for(stack, "job", job_id)["DELETE"] == 2
    assert Job.objects.get(pk=job_id).status == "CANCELLING"
    assert remote_job(stack, job_id).json()["status"] == "QUEUED"

    stack.faults("job", execution_delay=30)  # JobService answers again
    report = reconcile(refresh_after=timedelta(0))

    assert job_id in report.cancel_retried
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert remote_job(stack, job_id).json()["status"] == "CANCELLED"
    assert requests_for(stack, "job", job_id)["DELETE"] == 3
    assert status_of(stack, alice, job_id).json()["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("content", "remote", "final"),
    [
        (b"done first", "SUCCEEDED", "EXECUTION_COMPLETED"),
        (b"#fail first", "FAILED", "EXECUTION_ERROR"),
    ],
    ids=["completed", "failed"],
)
def test_a_job_that_finished_just_before_the_cancel_keeps_its_real_end(
    quiet_stack, alice, content, remote, final
):
    stack = quiet_stack
    job_id = submit(stack, alice, content)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    # JobService finishes it; FrontService has not noticed (nobody asked for the status).
    wait_until(lambda: remote_job(stack, job_id).json()["status"] == remote, f"remote {remote}")
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"

    response = cancel(stack, alice, job_id)

    assert response.status_code == 409, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "job_not_cancellable"
    assert final in response.json()["detail"]
    job = Job.objects.get(pk=job_id)
    assert job.status == final
    assert transitions(job_id)[-2:] == [("SUBMITTED", "CANCELLING"), ("CANCELLING", final)]
    assert requests_for(stack, "job", job_id)["DELETE"] == 1
    if final == "EXECUTION_COMPLETED":
        assert output_of(stack, alice, job_id).content == b"DONE FIRST"
    else:
        assert job.error["service"] == "jobservice"
        assert output_of(stack, alice, job_id).json()["code"] == "job_failed"


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["STORED_ERROR", "SUBMITTED_ERROR", "EXECUTION_ERROR"])
def test_a_job_in_an_error_state_is_not_cancellable(quiet_stack, alice, status):
    job = a_job(alice, status)

    response = cancel(quiet_stack, alice, str(job.id))

    assert response.status_code == 409
    assert response.json()["code"] == "job_not_cancellable"
    assert status in response.json()["detail"]
    job.refresh_from_db()
    assert job.status == status and job.history == []
    assert requests_for(quiet_stack, "job", job.id) == {}


def test_a_completed_job_is_not_cancellable(quiet_stack, alice):
    stack = quiet_stack
    job_id = submit(stack, alice, b"finished")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    before = requests_for(stack, "job", job_id)

    response = cancel(stack, alice, job_id)

    assert response.status_code == 409
    assert response.json() == {
        "type": "urn:frontservice:problem:job_not_cancellable",
        "title": "Conflict",
        "status": 409,
        "detail": "The job is EXECUTION_COMPLETED; a final job cannot be cancelled.",
        "code": "job_not_cancellable",
    }
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
    assert requests_for(stack, "job", job_id) == before


def test_another_owners_job_is_404_and_nothing_is_sent(quiet_stack, alice, bob, running_job):
    stack, job_id = quiet_stack, running_job
    before = requests_for(stack, "job", job_id)

    response = cancel(stack, bob, job_id)

    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    assert requests_for(stack, "job", job_id) == before
    assert remote_job(stack, job_id).json()["status"] == "QUEUED"
