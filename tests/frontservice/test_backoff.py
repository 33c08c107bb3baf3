"""The retry schedule: how long the next attempt waits, and when a step gives up."""

import pytest

from frontservice.backoff import Schedule

SCHEDULE = Schedule(base=0.5, cap=4.0, horizon=60.0)


def test_waits_are_full_jitter_under_a_capped_exponential():
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        assert SCHEDULE.backoff(attempt, rng=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-3)
        assert SCHEDULE.backoff(attempt, rng=lambda: 0.0) == 0.0


def test_a_huge_attempt_count_stays_at_the_cap():
    assert SCHEDULE.backoff(10_000, rng=lambda: 1.0) == 4.0


def test_retry_after_is_honoured():
    assert SCHEDULE.delay(1, retrying_for=0.0, retry_after=7.0) == 7.0


def test_the_last_attempt_is_due_at_the_horizon():
    assert SCHEDULE.delay(3, retrying_for=55.0, retry_after=30.0) == 5.0
    assert SCHEDULE.delay(30, retrying_for=59.0, rng=lambda: 1.0) == 1.0


def test_a_failure_at_the_horizon_is_the_last():
    assert not SCHEDULE.gives_up(retrying_for=59.9)
    assert SCHEDULE.gives_up(retrying_for=60.0)
