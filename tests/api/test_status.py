"""GET /api/v1/job/{id}/status: final states locally, SUBMITTED refreshed from JobService."""

import requests

from jobs.models import Job
from tests.support.api import status_of, submit, wait_for_status, wait_for_stored_status


def _job_gets(stack, job_id) -> int:
    return stack.stats("job")["by_id"].get(job_id, {}).get("GET", 0)


def test_a_final_job_is_answered_without_asking_jobservice(stack, alice):
    job_id = submit(stack, alice)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    gets_before = _job_gets(stack, job_id)

    for _ in range(3):
        response = status_of(stack, alice, job_id)
        assert response.status_code == 200
        assert response.json()["status"] == "EXECUTION_COMPLETED"

    assert _job_gets(stack, job_id) == gets_before


def test_a_submitted_job_is_refreshed_and_the_new_state_stored(stack, alice):
    job_id = submit(stack, alice)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})

    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
    assert _job_gets(stack, job_id) >= 1


def test_it_answers_the_last_known_status_while_jobservice_is_down(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    stack.stop("job")
    try:
        response = status_of(stack, alice, job_id)
    finally:
        stack.start("job")
        stack.cancel_remote(job_id)

    assert response.status_code == 200
    assert response.json()["status"] == "SUBMITTED"
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"


def test_an_unknown_or_malformed_id_is_404_job_not_found(stack, alice):
    for job_id in ("2b1d1c8e-5d0a-4c4e-9d7e-2f7f3b0b1a11", "not-a-uuid", "0"):
        response = requests.get(
            f"{stack.api}/api/v1/job/{job_id}/status", headers=alice.headers, timeout=30
        )
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "job_not_found"
