"""`Prefer: wait=N` (RFC 7240) on GET /api/v1/job/{id}/status, and jobs/api/waiting.py: reading
the preference, the Retry-After schedule and the per-process cap on held requests."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from jobs.api import waiting
from jobs.models import Job
from tests.support.inprocess import run_tasks, submit, wait_for_status
from tests.support.jobs_api import Background


def _status(api, owner, job_id, prefer: str | None = None):
    headers = {} if prefer is None else {"Prefer": prefer}
    return api.status_of(owner, job_id, headers=headers)


def _job_gets(services, job_id) -> int:
    return services.stats("job")["by_id"].get(job_id, {}).get("GET", 0)


def _held(timeout: float = 10) -> None:
    """Wait until a status request is being held (it took one of the process's wait slots)."""
    deadline = time.monotonic() + timeout
    while waiting._process_slots()._value == settings.WAIT_MAX_CONCURRENT:
        assert time.monotonic() < deadline, "no status request was held"
        time.sleep(0.01)


def _submitted(api, owner, data: bytes) -> str:
    """A job the worker has sent to JobService; its id."""
    job_id = submit(api, owner, data)["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    return job_id


def test_it_answers_as_soon_as_the_job_is_final(api, alice):
    job_id = submit(api, alice, b"wait for me")["id"]
    started = time.monotonic()

    # Asked while the job is still CREATED: the worker moves it on, JobService finishes it.
    held = Background(lambda: _status(api, alice, job_id, prefer="wait=25"))
    _held()
    run_tasks()
    response = held.result()

    assert response.status_code == 200
    assert response.json()["status"] == "EXECUTION_COMPLETED"
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
    assert response["Preference-Applied"] == "wait=25"
    assert not response.has_header("Retry-After")
    assert "Prefer" in response["Vary"]
    assert time.monotonic() - started < 25  # answered on completion, not at the deadline


def test_a_failing_job_is_answered_when_it_fails(api, alice):
    job_id = submit(api, alice, b"#fail while waited for")["id"]

    held = Background(lambda: _status(api, alice, job_id, prefer="respond-async, wait=25; foo=bar"))
    _held()
    run_tasks()
    response = held.result()

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "EXECUTION_ERROR"
    assert body["error"]["code"] == "execution_failed"
    assert response["Preference-Applied"] == "wait=25"


def test_it_answers_the_running_job_when_the_wait_is_over(api, services, alice):
    services.faults("job", execution_delay=30)
    job_id = _submitted(api, alice, b"slow")
    try:
        gets_before = _job_gets(services, job_id)

        response = _status(api, alice, job_id, prefer="wait=3")

        gets_during = _job_gets(services, job_id) - gets_before
    finally:
        services.cancel_remote(job_id)

    assert response.status_code == 200
    assert response.json()["status"] == "SUBMITTED"
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    assert response["Preference-Applied"] == "wait=3"
    assert 1 <= int(response["Retry-After"]) <= 30
    # JobService was asked at 0 s, 1 s and 3 s at most, not at every local poll (0.5 s).
    assert 1 <= gets_during <= 4


def test_a_malformed_or_absent_wait_is_ignored(api, services, alice):
    services.faults("job", execution_delay=30)
    job_id = _submitted(api, alice, b"slow")
    try:
        responses = [
            _status(api, alice, job_id, prefer=prefer)
            for prefer in (None, "wait=soon", "wait=-1", "wait", "return=minimal", "wait=1.5")
        ]
    finally:
        services.cancel_remote(job_id)

    for response in responses:
        assert response.status_code == 200
        assert response.json()["status"] == "SUBMITTED"
        assert not response.has_header("Preference-Applied")
        assert response.has_header("Retry-After")


def test_the_wait_is_capped(api, alice):
    job_id = _submitted(api, alice, b"capped")

    response = _status(api, alice, job_id, prefer="wait=86400")

    assert response.status_code == 200
    assert response["Preference-Applied"] == f"wait={settings.WAIT_MAX_SECONDS}"
    assert response.json()["status"] == "EXECUTION_COMPLETED"


def test_a_final_job_is_answered_at_once(api, services, alice):
    job_id = submit(api, alice, b"done already")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    gets_before = _job_gets(services, job_id)

    response = _status(api, alice, job_id, prefer="wait=10")

    assert response.status_code == 200
    assert response.json()["status"] == "EXECUTION_COMPLETED"
    assert response["Preference-Applied"] == "wait=10"
    assert _job_gets(services, job_id) == gets_before


def test_another_owners_job_is_not_waited_for(api, alice, bob):
    job_id = submit(api, alice, b"mine")["id"]

    response = _status(api, bob, job_id, prefer="wait=10")

    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    assert not response.has_header("Preference-Applied")


# The preference, the schedule and the slots, without a request.


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        ("wait=5", 5),
        ("WAIT = 7", 7),
        ('wait="9"', 9),
        ("respond-async, wait=10", 10),
        ("wait=3; foo=bar", 3),
        ("wait=2, wait=8", 2),
        ("wait=0", 0),
        (None, None),
        ("", None),
        ("wait", None),
        ("wait=", None),
        ("wait=-1", None),
        ("wait=1.5", None),
        ("wait=soon", None),
        ("wait=1234567890", None),
        ("handling=lenient", None),
        ("waiting=5", None),
    ],
)
def test_it_reads_the_wait_preference_and_ignores_malformed_ones(prefer, seconds):
    assert waiting.requested_wait(prefer) == seconds


@pytest.mark.parametrize(
    ("age", "retry_after"),
    [(0, 1), (15, 1), (25, 2), (120, 12), (299, 29), (3600, 30)],
)
def test_retry_after_grows_with_the_age_and_is_capped(age, retry_after):
    job = Job(status="SUBMITTED", created_at=timezone.now() - timedelta(seconds=age))

    assert waiting.retry_after(job) == retry_after


@pytest.mark.parametrize(("due_in", "retry_after"), [(4.2, 6), (0.5, 2), (-10, 1), (600, 30)])
def test_a_job_waiting_for_its_next_attempt_is_polled_no_later_than_it_is_due(due_in, retry_after):
    now = timezone.now()
    job = Job(
        status="STORED",
        created_at=now - timedelta(hours=1),  # old: by its age alone, RETRY_AFTER_MAX_SECONDS
        next_attempt_at=now + timedelta(seconds=due_in),
    )

    assert waiting.retry_after(job) == retry_after


def test_a_final_job_has_no_retry_after():
    job = Job(status="EXECUTION_COMPLETED", created_at=timezone.now())

    assert waiting.retry_after(job) is None


def test_no_more_requests_are_held_than_the_cap(settings):
    settings.WAIT_MAX_CONCURRENT = 4
    waiting._slots = None  # this test's cap, not one made earlier in the process
    try:
        with waiting.wait_slot() as first:
            held = [waiting.wait_slot() for _ in range(3)]
            granted = [slot.__enter__() for slot in held]
            with waiting.wait_slot() as fifth:
                assert first and all(granted) and not fifth
            for slot in held:
                slot.__exit__(None, None, None)
        with waiting.wait_slot() as again:
            assert again  # slots are given back
    finally:
        waiting._slots = None


def test_a_cap_of_zero_turns_waiting_off(settings):
    settings.WAIT_MAX_CONCURRENT = 0

    with waiting.wait_slot() as granted:
        assert not granted
