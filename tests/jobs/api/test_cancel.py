"""POST /api/v1/job/{id}/cancel: what the owner is answered, what is stored, what is sent.

In-process: the API through DRF's test client, the worker's tasks run by run_tasks(), the
reference services as real processes. What reached them is read from their /_control/stats
(requests by id and method) and from their own API; the stored state from MongoDB. The races
with a worker busy on the job are in tests/orchestration/test_cancel.py, the domain's own part
in tests/jobs/test_cancel.py.
"""

from datetime import timedelta

import pytest

from jobs import staging
from jobs.models import Job
from orchestration import services as orchestration
from orchestration.reconcile import reconcile
from tests.support.inprocess import body_of, run_tasks, submit, wait_for_status
from tests.support.worker import a_job, remote_job, requests_for, transitions, wait_until

# --- not submitted yet: cancelled locally, never reaches JobService ---------------------------


def test_a_created_job_is_cancelled_at_once_and_never_orchestrated(api, services, alice):
    job = a_job(alice, "CREATED")
    staging.staged_path(job.id).write_bytes(b"never stored")

    response = api.cancel(alice, str(job.id))

    assert response.status_code == 200, response.content
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
    assert requests_for(services, "blob", job.id) == {}
    assert requests_for(services, "job", job.id) == {}


def test_a_job_cancelled_before_its_task_ran_is_never_orchestrated(api, services, alice):
    job_id = submit(api, alice, b"cancelled before the worker")["id"]

    response = api.cancel(alice, job_id)
    ran = run_tasks()  # the task enqueued at the POST comes after the cancel

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert ran == [f"orchestrate-{job_id}"]
    job = Job.objects.get(pk=job_id)
    assert job.status == "CANCELLED" and job.attempts == 0
    assert transitions(job_id) == [("CREATED", "CANCELLED")]
    assert not staging.staged_path(job_id).exists()
    assert requests_for(services, "blob", job_id) == {}
    assert requests_for(services, "job", job_id) == {}


# --- submitted: cancelled in JobService ------------------------------------------------------


@pytest.fixture
def running_job(api, services, alice) -> str:
    """A SUBMITTED job that stays QUEUED in JobService for 30 s."""
    services.faults("job", execution_delay=30)
    job_id = submit(api, alice, b"long running")["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    yield job_id
    services.cancel_remote(job_id)


def test_a_submitted_job_is_cancelled_in_jobservice(api, services, alice, running_job):
    job_id = running_job

    response = api.cancel(alice, job_id)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["error"] is None
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert remote_job(services, job_id).json()["status"] == "CANCELLED"
    assert requests_for(services, "job", job_id)["DELETE"] == 1
    assert transitions(job_id)[-2:] == [("SUBMITTED", "CANCELLING"), ("CANCELLING", "CANCELLED")]


def test_cancelling_again_answers_the_same_and_sends_nothing(api, services, alice, running_job):
    job_id = running_job
    assert api.cancel(alice, job_id).status_code == 200
    before = requests_for(services, "job", job_id)

    again = api.cancel(alice, job_id)

    assert again.status_code == 200
    assert again.json()["status"] == "CANCELLED"
    assert requests_for(services, "job", job_id) == before
    assert transitions(job_id).count(("CANCELLING", "CANCELLED")) == 1


def test_the_output_of_a_cancelled_job_is_404_job_cancelled(api, services, alice, running_job):
    job_id = running_job
    api.cancel(alice, job_id)
    before = requests_for(services, "job", job_id)

    output = api.output_of(alice, job_id)
    status = api.status_of(alice, job_id)

    assert output.status_code == 404
    assert output["Content-Type"] == "application/problem+json"
    assert output.json()["code"] == "job_cancelled"
    assert status.status_code == 200 and status.json()["status"] == "CANCELLED"
    # Final: answered locally.
    assert requests_for(services, "job", job_id) == before


def test_a_cancel_while_jobservice_fails_is_202_and_finished_later(
    api, services, alice, running_job
):
    job_id = running_job
    services.faults("job", execution_delay=30, status=503, fail_rate=1.0, methods=["DELETE"])

    response = api.cancel(alice, job_id)
    again = api.cancel(alice, job_id)
    polled = api.status_of(alice, job_id)

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "CANCELLING"
    # The repeat sends nothing; a status request tries the cancel again (and fails again).
    assert again.status_code == 202 and again.json()["status"] == "CANCELLING"
    assert polled.status_code == 200 and polled.json()["status"] == "CANCELLING"
    assert requests_for(services, "job", job_id)["DELETE"] == 2
    assert Job.objects.get(pk=job_id).status == "CANCELLING"
    assert remote_job(services, job_id).json()["status"] == "QUEUED"

    services.faults("job", execution_delay=30)  # JobService answers again
    report = reconcile(refresh_after=timedelta(0))

    assert job_id in report.cancel_retried
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert remote_job(services, job_id).json()["status"] == "CANCELLED"
    assert requests_for(services, "job", job_id)["DELETE"] == 3
    assert api.status_of(alice, job_id).json()["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("content", "remote", "final"),
    [
        (b"done first", "SUCCEEDED", "EXECUTION_COMPLETED"),
        (b"#fail first", "FAILED", "EXECUTION_ERROR"),
    ],
    ids=["completed", "failed"],
)
def test_a_job_that_finished_just_before_the_cancel_keeps_its_real_end(
    api, services, alice, content, remote, final
):
    job_id = submit(api, alice, content)["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    # JobService finishes it; FrontService has not noticed (nobody asked for the status).
    wait_until(lambda: remote_job(services, job_id).json()["status"] == remote, f"remote {remote}")
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"

    response = api.cancel(alice, job_id)

    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "job_not_cancellable"
    assert final in response.json()["detail"]
    job = Job.objects.get(pk=job_id)
    assert job.status == final
    assert transitions(job_id)[-2:] == [("SUBMITTED", "CANCELLING"), ("CANCELLING", final)]
    assert requests_for(services, "job", job_id)["DELETE"] == 1
    output = api.output_of(alice, job_id)
    if final == "EXECUTION_COMPLETED":
        assert body_of(output) == b"DONE FIRST"
    else:
        assert job.error["service"] == "jobservice"
        assert output.json()["code"] == "job_failed"


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["STORED_ERROR", "SUBMITTED_ERROR", "EXECUTION_ERROR"])
def test_a_job_in_an_error_state_is_not_cancellable(api, services, alice, status):
    job = a_job(alice, status)

    response = api.cancel(alice, str(job.id))

    assert response.status_code == 409
    assert response.json()["code"] == "job_not_cancellable"
    assert status in response.json()["detail"]
    job.refresh_from_db()
    assert job.status == status and job.history == []
    assert requests_for(services, "job", job.id) == {}


def test_a_completed_job_is_not_cancellable(api, services, alice):
    job_id = submit(api, alice, b"finished")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    before = requests_for(services, "job", job_id)

    response = api.cancel(alice, job_id)

    assert response.status_code == 409
    assert response.json() == {
        "type": "urn:frontservice:problem:job_not_cancellable",
        "title": "Conflict",
        "status": 409,
        "detail": "The job is EXECUTION_COMPLETED; a final job cannot be cancelled.",
        "code": "job_not_cancellable",
    }
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
    assert requests_for(services, "job", job_id) == before


def test_another_owners_job_is_404_and_nothing_is_sent(api, services, alice, bob, running_job):
    job_id = running_job
    before = requests_for(services, "job", job_id)

    response = api.cancel(bob, job_id)

    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    assert requests_for(services, "job", job_id) == before
    assert remote_job(services, job_id).json()["status"] == "QUEUED"
