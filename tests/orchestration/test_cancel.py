"""The worker tier's part of a cancel (orchestration/cancel.py), and the worker's side of the
races with it (orchestration/services.py).

In-process: the owner's cancel goes through the API (DRF's test client), the worker's task runs
in a thread of the test process (tests.support.worker.Background) while a fault injected into
the reference service holds its upload or its submit open, so the cancel lands mid-step. What
reached the reference services is read from their /_control/stats and their own API.

job_cancel_downstream meets the real JobService for every answer it gives; the two answers it
never gives (a `job_final` without the job, a cancel answered with a job still running) are
mocked at the HTTP boundary with `responses`.
"""

from datetime import timedelta

import pytest
import requests
import responses
from django.conf import settings
from django.utils import timezone

from jobs import staging
from jobs.models import Job
from orchestration import services as orchestration
from orchestration.cancel import job_cancel_downstream
from orchestration.reconcile import reconcile
from tests.support.inprocess import run_tasks, submit
from tests.support.worker import (
    Background,
    a_job,
    blob,
    remote_job,
    requests_for,
    transitions,
    wait_until,
)

# The most a `hold` fault keeps the worker's upload or submit open; the test releases it as
# soon as its cancel is answered, so the race is decided by the test, not by the clock.
HELD = 60

# --- the worker racing the owner's cancel ----------------------------------------------------


def test_a_worker_mid_upload_loses_to_the_cancel_and_submits_nothing(api, services, alice):
    services.faults("blob", hold=HELD, methods=["PUT"])
    job_id = submit(api, alice, b"cancelled while uploading")["id"]
    worker = Background(run_tasks)
    wait_until(lambda: "PUT" in requests_for(services, "blob", job_id), "the upload started")

    response = api.cancel(alice, job_id)
    services.release("blob")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    # The upload ends, its CREATED -> STORED fails, and the worker deletes the blob it wrote.
    assert worker.join() == [f"orchestrate-{job_id}"]
    assert "DELETE" in requests_for(services, "blob", job_id)
    assert blob(services, job_id).status_code == 404
    assert not staging.staged_path(job_id).exists()
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert transitions(job_id) == [("CREATED", "CANCELLED")]
    assert requests_for(services, "job", job_id) == {}


def test_a_worker_that_opens_the_input_after_the_cancel_leaves_the_job_cancelled(
    api, services, alice
):
    # The first upload is slow and then fails, so the worker's next attempt opens the staged
    # input again, after the cancel has deleted it.
    services.faults("blob", fail_next=1, status=503, hold=HELD, methods=["PUT"])
    job_id = submit(api, alice, b"cancelled between two uploads")["id"]
    worker = Background(run_tasks)
    wait_until(lambda: "PUT" in requests_for(services, "blob", job_id), "the upload started")

    response = api.cancel(alice, job_id)
    services.release("blob")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert not staging.staged_path(job_id).exists()
    # The worker's task ends normally (no crash on the missing file: join() would raise it) ...
    assert worker.join() == [f"orchestrate-{job_id}"]
    # ... is acknowledged, so it is not delivered again ...
    assert run_tasks() == []
    # ... having sent no second upload, and moved the job nowhere.
    job = Job.objects.get(pk=job_id)
    assert job.status == "CANCELLED" and job.error is None
    assert transitions(job_id) == [("CREATED", "CANCELLED")]
    assert requests_for(services, "blob", job_id).get("PUT") == 1
    assert blob(services, job_id).status_code == 404
    assert requests_for(services, "job", job_id) == {}


def test_a_job_not_cancelled_whose_input_is_gone_ends_stored_error(services, alice):
    # The counterpart of the above: no cancel, so the missing input is the job's own error.
    job = a_job(alice, "CREATED")

    orchestration.job_orchestrate(job_id=job.id)

    job.refresh_from_db()
    assert job.status == "STORED_ERROR"
    assert job.error["message"] == "staged input is missing"
    assert transitions(job.id) == [("CREATED", "STORED_ERROR")]
    assert requests_for(services, "blob", job.id) == {}


def test_a_stored_job_cancelled_before_its_submit_is_never_submitted(api, services, alice):
    job = Job(tenant_id=alice.tenant_id, sub=alice.sub, status="STORED")
    job_id = job.blob_id = str(job.id)
    job.save(force_insert=True)
    requests.put(f"{services.urls['blob']}/blobs/{job_id}", data=b"stored", timeout=10)
    stale = Job.objects.get(pk=job.pk)  # what a worker read just before the cancel

    response = api.cancel(alice, job_id)
    # The worker carries on from what it read: its claim of the submit fails.
    orchestration.job_submit_to_jobservice(job=stale)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert transitions(job_id) == [("STORED", "CANCELLED")]
    assert requests_for(services, "job", job_id) == {}
    assert remote_job(services, job_id).status_code == 404
    assert blob(services, job_id).status_code == 404  # deleted by the worker, best effort


def test_a_cancel_during_the_submit_is_sent_to_jobservice_once_the_submit_is_over(
    api, services, alice
):
    services.faults("job", hold=HELD, methods=["PUT"])
    job_id = submit(api, alice, b"cancelled while submitting")["id"]
    worker = Background(run_tasks)
    wait_until(lambda: "PUT" in requests_for(services, "job", job_id), "the submit started")

    response = api.cancel(alice, job_id)
    services.release("job")

    # The worker claimed the submit, so JobService may get the job: cancelled there, and
    # JobService does not have it yet (404), so the cancel is not confirmed.
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "CANCELLING"
    # The worker's PUT lands, its STORED -> SUBMITTED fails, and it sends the cancel itself.
    worker.join()
    job = Job.objects.get(pk=job_id)
    assert job.status == "CANCELLED"
    assert requests_for(services, "job", job_id) == {"PUT": 1, "DELETE": 2}
    assert remote_job(services, job_id).json()["status"] == "CANCELLED"
    assert transitions(job_id) == [
        ("CREATED", "STORED"),
        ("STORED", "CANCELLING"),
        ("CANCELLING", "CANCELLED"),
    ]
    assert job.remote_job_id == job_id


def test_a_claimed_submit_whose_worker_died_is_cancelled_once_no_put_can_come(api, services, alice):
    # The worker claimed the submit and died before its PUT: nobody will send it now.
    job = Job(tenant_id=alice.tenant_id, sub=alice.sub, status="STORED")
    job_id = job.blob_id = job.remote_job_id = str(job.id)
    job.save(force_insert=True)

    response = api.cancel(alice, job_id)
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
    assert requests_for(services, "job", job_id) == {"DELETE": 3}
    assert transitions(job_id) == [("STORED", "CANCELLING"), ("CANCELLING", "CANCELLED")]


# --- job_cancel_downstream: how JobService's answer ends a CANCELLING job ---------------------


def cancelling(owner, *, remote_job_id: str | None = None) -> Job:
    """A CANCELLING job (with no history), its remote job id its own unless given."""
    job = Job(tenant_id=owner.tenant_id, sub=owner.sub, status="CANCELLING")
    job.remote_job_id = remote_job_id or str(job.id)
    job.save(force_insert=True)
    return job


def queued_in_jobservice(services, remote_job_id: str) -> None:
    """A job JobService has accepted and keeps QUEUED for 30 s (its blob stored first)."""
    services.faults("job", execution_delay=30)
    blob_url = f"{services.urls['blob']}/blobs/{remote_job_id}"
    requests.put(blob_url, data=b"queued", timeout=10).raise_for_status()
    job_url = f"{services.urls['job']}/jobs/{remote_job_id}"
    requests.put(job_url, json={"blob_id": remote_job_id}, timeout=10).raise_for_status()


def age(job: Job, seconds: float) -> Job:
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))
    job.refresh_from_db()
    return job


def test_it_ends_cancelled_when_jobservice_cancels(services, alice):
    job = cancelling(alice)
    queued_in_jobservice(services, job.remote_job_id)

    job = job_cancel_downstream(job)

    assert job.status == "CANCELLED" and job.error is None
    assert job.history[-1]["reason"] == "JobService reported CANCELLED on cancel"
    assert remote_job(services, job.remote_job_id).json()["status"] == "CANCELLED"
    assert requests_for(services, "job", job.remote_job_id)["DELETE"] == 1


def test_a_job_that_finished_in_jobservice_ends_as_it_finished(services, alice):
    # JobService answers the cancel of a finished job with 409 job_final and the job attached.
    job = cancelling(alice)
    blob_url = f"{services.urls['blob']}/blobs/{job.remote_job_id}"
    requests.put(blob_url, data=b"#fail before the cancel", timeout=10).raise_for_status()
    job_url = f"{services.urls['job']}/jobs/{job.remote_job_id}"
    requests.put(job_url, json={"blob_id": job.remote_job_id}, timeout=10).raise_for_status()
    wait_until(
        lambda: requests.get(job_url, timeout=10).json()["status"] == "FAILED", "remote FAILED"
    )

    job = job_cancel_downstream(job)

    assert job.status == "EXECUTION_ERROR"
    assert job.error["service"] == "jobservice"
    assert job.history[-1]["reason"] == "JobService reported FAILED on cancel"


def test_it_stays_cancelling_while_jobservice_is_unavailable(services, alice):
    job = cancelling(alice)
    queued_in_jobservice(services, job.remote_job_id)
    services.faults("job", execution_delay=30, status=503, fail_rate=1.0, methods=["DELETE"])

    job = job_cancel_downstream(job)

    assert job.status == "CANCELLING"
    assert Job.objects.get(pk=job.pk).history == []
    assert requests_for(services, "job", job.remote_job_id)["DELETE"] == 1
    assert remote_job(services, job.remote_job_id).json()["status"] == "QUEUED"
    services.cancel_remote(job.remote_job_id)


def test_it_stays_cancelling_while_jobservice_is_unreachable(services, alice, monkeypatch):
    from tests.support.processes import free_port

    job = cancelling(alice)
    # Nothing listens there: free a moment ago.
    monkeypatch.setattr(settings, "JOBSERVICE_URL", f"http://127.0.0.1:{free_port()}")

    job = job_cancel_downstream(job)

    assert job.status == "CANCELLING"
    assert Job.objects.get(pk=job.pk).history == []


def test_not_in_jobservice_while_a_submit_may_be_in_flight_stays_cancelling(
    services, alice, settings
):
    settings.Q_TIMEOUT = 60
    job = cancelling(alice)

    job = job_cancel_downstream(age(job, 30))  # younger than Q_TIMEOUT

    assert job.status == "CANCELLING"
    assert requests_for(services, "job", job.remote_job_id) == {"DELETE": 1}


def test_not_in_jobservice_once_no_submit_can_be_in_flight_is_cancelled(services, alice, settings):
    settings.Q_TIMEOUT = 60
    job = cancelling(alice)

    job = job_cancel_downstream(age(job, 61))

    assert job.status == "CANCELLED"
    assert job.history[-1]["reason"] == "cancelled; JobService never had it"
    assert requests_for(services, "job", job.remote_job_id) == {"DELETE": 1}


def test_not_in_jobservice_after_the_workers_own_submit_is_cancelled(services, alice):
    job = cancelling(alice)

    job = job_cancel_downstream(job, submit_over=True)

    assert job.status == "CANCELLED"


def test_a_job_no_longer_cancelling_is_left_alone(services, alice):
    job = cancelling(alice)
    Job.objects.filter(pk=job.pk).update(status="CANCELLED")
    job.refresh_from_db()

    assert job_cancel_downstream(job).status == "CANCELLED"
    assert requests_for(services, "job", job.remote_job_id) == {}


# Answers the reference JobService never gives, mocked at the HTTP boundary.

MOCKED = "http://jobservice.test"


@pytest.fixture
def mocked(settings):
    settings.JOBSERVICE_URL = MOCKED
    with responses.RequestsMock() as rsps:
        yield rsps


def _remote(job: Job, status: str, error=None) -> dict:
    return {"id": str(job.id), "blob_id": str(job.id), "status": status, "error": error}


def test_a_job_final_without_the_job_is_looked_up(mocked, alice):
    job = cancelling(alice)
    mocked.delete(f"{MOCKED}/jobs/{job.id}", json={"code": "job_final"}, status=409)
    mocked.get(f"{MOCKED}/jobs/{job.id}", json=_remote(job, "FAILED", error="boom"))

    job = job_cancel_downstream(job)

    assert job.status == "EXECUTION_ERROR"
    assert job.error["service"] == "jobservice" and job.error["message"] == "boom"


def test_a_cancel_answered_with_a_job_still_running_stays_cancelling(mocked, alice):
    job = cancelling(alice)
    mocked.delete(f"{MOCKED}/jobs/{job.id}", json=_remote(job, "RUNNING"))

    job = job_cancel_downstream(job)

    assert job.status == "CANCELLING"
    assert Job.objects.get(pk=job.pk).history == []


def test_a_job_without_a_remote_id_is_cancelled_under_its_own_id(services, alice):
    # A CANCELLING job whose submit was never claimed has no remote id: its own id is used.
    job = cancelling(alice)
    Job.objects.filter(pk=job.pk).update(remote_job_id="")
    job.refresh_from_db()

    job = job_cancel_downstream(job, submit_over=True)

    assert job.status == "CANCELLED"
    assert requests_for(services, "job", job.id) == {"DELETE": 1}
