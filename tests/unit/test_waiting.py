"""Reading `Prefer: wait`, the Retry-After schedule and the per-process cap on held requests."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.api import waiting
from jobs.models import Job


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
