"""`Prefer: wait=N` (RFC 7240) on GET /api/v1/job/{id}/status."""

import time

import requests
from django.conf import settings

from jobs.models import Job
from tests.support.api import submit, wait_for_status, wait_for_stored_status


def _status(stack, owner, job_id, prefer: str | None = None) -> requests.Response:
    headers = dict(owner.headers)
    if prefer is not None:
        headers["Prefer"] = prefer
    return requests.get(f"{stack.api}/api/v1/job/{job_id}/status", headers=headers, timeout=60)


def _job_gets(stack, job_id) -> int:
    return stack.stats("job")["by_id"].get(job_id, {}).get("GET", 0)


def test_it_answers_as_soon_as_the_job_is_final(stack, alice):
    job_id = submit(stack, alice, b"wait for me")["id"]
    started = time.monotonic()

    # Asked while the job is still CREATED: the worker moves it on, JobService finishes it.
    response = _status(stack, alice, job_id, prefer="wait=25")

    assert response.status_code == 200
    assert response.json()["status"] == "EXECUTION_COMPLETED"
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
    assert response.headers["Preference-Applied"] == "wait=25"
    assert "Retry-After" not in response.headers
    assert "Prefer" in response.headers["Vary"]
    assert time.monotonic() - started < 25  # answered on completion, not at the deadline


def test_a_failing_job_is_answered_when_it_fails(stack, alice):
    job_id = submit(stack, alice, b"#fail while waited for")["id"]

    response = _status(stack, alice, job_id, prefer="respond-async, wait=25; foo=bar")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "EXECUTION_ERROR"
    assert body["error"]["code"] == "execution_failed"
    assert response.headers["Preference-Applied"] == "wait=25"


def test_it_answers_the_running_job_when_the_wait_is_over(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, b"slow")["id"]
    try:
        wait_for_stored_status(job_id, {"SUBMITTED"})
        gets_before = _job_gets(stack, job_id)

        response = _status(stack, alice, job_id, prefer="wait=3")

        gets_during = _job_gets(stack, job_id) - gets_before
    finally:
        stack.cancel_remote(job_id)

    assert response.status_code == 200
    assert response.json()["status"] == "SUBMITTED"
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    assert response.headers["Preference-Applied"] == "wait=3"
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    # JobService was asked at 0 s, 1 s and 3 s at most, not at every local poll (0.5 s).
    assert 1 <= gets_during <= 4


def test_a_malformed_or_absent_wait_is_ignored(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, b"slow")["id"]
    try:
        wait_for_stored_status(job_id, {"SUBMITTED"})
        responses = [
            _status(stack, alice, job_id, prefer=prefer)
            for prefer in (None, "wait=soon", "wait=-1", "wait", "return=minimal", "wait=1.5")
        ]
    finally:
        stack.cancel_remote(job_id)

    for response in responses:
        assert response.status_code == 200
        assert response.json()["status"] == "SUBMITTED"
        assert "Preference-Applied" not in response.headers
        assert "Retry-After" in response.headers


def test_the_wait_is_capped(stack, alice):
    job_id = submit(stack, alice, b"capped")["id"]

    response = _status(stack, alice, job_id, prefer="wait=86400")

    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == f"wait={settings.WAIT_MAX_SECONDS}"
    assert response.json()["status"] == "EXECUTION_COMPLETED"


def test_a_final_job_is_answered_at_once(stack, alice):
    job_id = submit(stack, alice, b"done already")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    gets_before = _job_gets(stack, job_id)

    response = _status(stack, alice, job_id, prefer="wait=10")

    assert response.status_code == 200
    assert response.json()["status"] == "EXECUTION_COMPLETED"
    assert response.headers["Preference-Applied"] == "wait=10"
    assert _job_gets(stack, job_id) == gets_before


def test_another_owners_job_is_not_waited_for(stack, alice, bob):
    job_id = submit(stack, alice, b"mine")["id"]

    response = _status(stack, bob, job_id, prefer="wait=10")

    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    assert "Preference-Applied" not in response.headers
