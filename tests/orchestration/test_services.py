"""The orchestration of a job (orchestration/services.py): store the input in BlobService, then
submit it to JobService. A task makes one attempt; a transient failure leaves the job in its
status with its next attempt due (the dispatcher enqueues it then); permanent failures fail at
once; a step that fails for DOWNSTREAM_RETRY_HORIZON (3 s in the tests) ends in its error state
with the attempts and the last error.

Jobs are submitted through the API in-process and their tasks run with run_tasks(); faults are
injected in the reference services, or a service is made unreachable by pointing its setting at
a closed port.
"""

from datetime import datetime
from pathlib import Path

from jobs import staging
from jobs.models import Job
from orchestration import services as orchestration_services
from tests.support.inprocess import run_tasks, run_until_settled, submit, wait_for_status
from tests.support.processes import free_port


def _reasons(job_id) -> list[str]:
    return [entry["reason"] for entry in Job.objects.get(pk=job_id).history]


def _transitions(job_id) -> list[tuple[str, str]]:
    return [(entry["from"], entry["to"]) for entry in Job.objects.get(pk=job_id).history]


def _orchestrated(job_id) -> Job:
    """The job after the worker's tasks, and the dispatcher's passes, ran until it no longer
    waits for an attempt."""
    run_until_settled(job_id)
    return Job.objects.get(pk=job_id)


def _closed_port() -> int:
    return free_port()  # free a moment ago: nothing listens there


def test_blobservice_down_ends_in_stored_error_and_keeps_the_staged_input(
    api, services, alice, settings
):
    # BlobService stops answering: nothing listens on its address any more.
    settings.BLOBSERVICE_URL = f"http://127.0.0.1:{_closed_port()}"
    job_id = submit(api, alice, b"never stored")["id"]
    job = _orchestrated(job_id)

    assert job.status == "STORED_ERROR"
    assert job.error["service"] == "blobservice"
    body = api.status_of(alice, job_id).json()
    assert body["status"] == "STORED_ERROR"
    assert body["error"]["service"] == "blobservice"
    assert body["error"]["code"] == "store_failed"
    output = api.output_of(alice, job_id)
    assert output.status_code == 404 and output.json()["code"] == "job_failed"
    assert job_id not in services.stats("job")["by_id"]
    # An operator retry (STORED_ERROR -> CREATED) needs the input again.
    assert (Path(settings.STAGING_DIR) / job_id).read_bytes() == b"never stored"
    assert _transitions(job_id) == [("CREATED", "STORED_ERROR")]


def test_jobservice_refusing_ends_in_submitted_error(api, services, alice):
    services.faults("job", fail_next=1, status=400, methods=["PUT"])

    job_id = submit(api, alice, b"refused")["id"]
    job = _orchestrated(job_id)

    assert job.status == "SUBMITTED_ERROR"
    assert job.error["service"] == "jobservice" and job.error["status_code"] == 400
    body = api.status_of(alice, job_id).json()
    assert body["status"] == "SUBMITTED_ERROR"
    assert body["error"] == {
        "code": "submit_failed",
        "service": "jobservice",
        "message": job.error["message"],
        "status_code": 400,
    }
    output = api.output_of(alice, job_id)
    assert output.status_code == 404 and output.json()["code"] == "job_failed"
    assert services.stats("job").get("executions", {}).get(job_id) is None
    assert _transitions(job_id) == [("CREATED", "STORED"), ("STORED", "SUBMITTED_ERROR")]


def test_blobservice_500s_are_retried_and_the_job_completes(api, services, alice):
    services.faults("blob", fail_next=2, status=500, methods=["PUT"])

    job_id = submit(api, alice, b"retry me")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})

    assert services.stats("blob")["faults_injected"] == 2
    assert "input stored in BlobService (3 attempts)" in _reasons(job_id)
    assert services.stats("job")["executions"][job_id] == 1


def test_a_429_with_retry_after_is_honoured(api, services, alice):
    services.faults("job", fail_next=1, status=429, retry_after=1, methods=["PUT"])

    job_id = submit(api, alice, b"throttled")["id"]
    job = _orchestrated(job_id)

    assert job.status in {"SUBMITTED", "EXECUTION_COMPLETED"}
    stored, submitted = (entry for entry in job.history if entry["to"] in {"STORED", "SUBMITTED"})
    assert submitted["reason"] == "submitted to JobService (2 attempts)"
    # Retry-After: 1 was honoured between the two attempts (no jitter shortens it).
    seconds = _seconds_between(stored["at"], submitted["at"])
    assert seconds >= 1.0
    assert services.stats("job")["by_id"][job_id]["PUT"] == 2


def test_a_permanent_4xx_fails_at_once(api, services, alice):
    services.faults("blob", fail_next=1, status=403, methods=["PUT"])

    job_id = submit(api, alice, b"forbidden")["id"]
    job = _orchestrated(job_id)

    assert job.status == "STORED_ERROR"
    assert job.error["status_code"] == 403 and job.error["attempts"] == 1
    assert services.stats("blob")["by_id"][job_id]["PUT"] == 1


def test_a_service_that_keeps_failing_ends_in_error_with_the_attempts_and_last_error(
    api, services, alice, settings
):
    services.faults("job", fail_rate=1.0, status=503, methods=["PUT"])

    job_id = submit(api, alice, b"never submitted")["id"]
    job = _orchestrated(job_id)

    assert job.status == "SUBMITTED_ERROR"
    assert job.error["service"] == "jobservice" and job.error["status_code"] == 503
    # Given up only at the horizon (DOWNSTREAM_RETRY_HORIZON, 3 s here), not after a count.
    assert job.error["attempts"] >= 2 and job.attempts == job.error["attempts"]
    stored, failed = (e for e in job.history if e["to"] in {"STORED", "SUBMITTED_ERROR"})
    assert _seconds_between(stored["at"], failed["at"]) >= settings.DOWNSTREAM_RETRY_HORIZON
    # Each attempt is one PUT; while the circuit was open the job waited without calling.
    assert services.stats("job")["by_id"][job_id]["PUT"] == job.error["attempts"]
    assert job.next_attempt_at is None and job.retrying_since is None
    body = api.status_of(alice, job_id).json()
    assert body["status"] == "SUBMITTED_ERROR" and body["error"]["status_code"] == 503
    assert body["attempts"] == job.attempts and body["next_attempt_at"] is None


def test_a_blobservice_slower_than_the_read_timeout_is_a_retried_timeout(
    api, services, alice, settings
):
    # Every PUT answers later than DOWNSTREAM_READ_TIMEOUT.
    settings.DOWNSTREAM_READ_TIMEOUT = 0.5
    services.faults("blob", delay=1.0, methods=["PUT"])

    job_id = submit(api, alice, b"slow")["id"]
    job = _orchestrated(job_id)

    assert job.status == "STORED_ERROR"
    assert "timed out" in job.error["message"].lower() or "timeout" in job.error["message"].lower()
    assert job.error["status_code"] is None and job.error["attempts"] >= 2
    # The input is kept for an operator retry.
    assert staging.staged_path(job_id).read_bytes() == b"slow"


def _seconds_between(first: str, second: str) -> float:
    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()


def test_a_transient_failure_leaves_the_job_waiting_in_its_status(api, services, alice):
    services.faults("job", fail_next=1, status=503, methods=["PUT"])

    job_id = submit(api, alice, b"wait for me")["id"]
    run_tasks()  # the one delivery, and no dispatcher: the task has returned

    job = Job.objects.get(pk=job_id)
    assert job.status == "STORED"
    assert job.attempts == 1 and job.deliveries == 0
    assert job.error["service"] == "jobservice" and job.error["status_code"] == 503
    assert job.next_attempt_at is not None and job.retrying_since is not None
    assert services.stats("job")["by_id"][job_id]["PUT"] == 1
    body = api.status_of(alice, job_id).json()
    assert body["status"] == "STORED" and body["attempts"] == 1
    assert body["last_error"]["status_code"] == 503 and body["next_attempt_at"] is not None
    assert body["error"] is None

    run_until_settled(job_id)
    job = Job.objects.get(pk=job_id)
    assert job.status in {"SUBMITTED", "EXECUTION_COMPLETED"}
    assert (job.attempts, job.error, job.next_attempt_at) == (0, None, None)
    assert services.stats("job")["by_id"][job_id]["PUT"] == 2


def test_a_task_delivered_before_the_next_attempt_is_due_leaves_the_job_waiting(
    api, services, alice
):
    services.faults("job", fail_next=1, status=429, retry_after=60, methods=["PUT"])
    job_id = submit(api, alice, b"not yet")["id"]
    run_tasks()

    orchestration_services.enqueue_orchestration(Job.objects.get(pk=job_id).id)
    run_tasks()

    job = Job.objects.get(pk=job_id)
    assert job.status == "STORED" and job.attempts == 1
    assert services.stats("job")["by_id"][job_id]["PUT"] == 1
