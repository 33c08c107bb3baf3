"""The retry schedule: what is retried, how long it waits, when it gives up."""

import pytest

from frontservice.backoff import GaveUp, RetryPolicy, call_with_retries
from frontservice.downstream import DownstreamError

POLICY = RetryPolicy(max_attempts=5, base=0.5, cap=4.0, deadline=60.0)


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(*errors):
    """A call that raises the given errors in turn, then returns "ok"."""
    remaining = list(errors)
    calls = []

    def call():
        calls.append(1)
        if remaining:
            raise remaining.pop(0)
        return "ok"

    call.calls = calls
    return call


def transient(**kwargs):
    return DownstreamError("blobservice", "HTTP 503", status_code=503, retryable=True, **kwargs)


def permanent():
    return DownstreamError("blobservice", "HTTP 400 bad", status_code=400, retryable=False)


def test_it_returns_the_result_and_the_attempts_it_took():
    time = FakeTime()
    call = failing(transient(), transient())

    assert call_with_retries(call, what="t", policy=POLICY, sleep=time.sleep, clock=time.clock) == (
        "ok",
        3,
    )
    assert len(time.sleeps) == 2


def test_a_permanent_error_is_not_retried():
    time = FakeTime()
    call = failing(permanent())

    with pytest.raises(GaveUp) as raised:
        call_with_retries(call, what="t", policy=POLICY, sleep=time.sleep, clock=time.clock)

    assert raised.value.attempts == 1 and raised.value.error.status_code == 400
    assert time.sleeps == []


def test_it_gives_up_after_max_attempts_with_the_last_error():
    time = FakeTime()
    call = failing(*[transient() for _ in range(10)])

    with pytest.raises(GaveUp) as raised:
        call_with_retries(call, what="t", policy=POLICY, sleep=time.sleep, clock=time.clock)

    assert raised.value.attempts == 5 and len(call.calls) == 5


def test_waits_are_full_jitter_under_a_capped_exponential():
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        assert POLICY.backoff(attempt, rng=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-3)
        assert POLICY.backoff(attempt, rng=lambda: 0.0) == 0.0


def test_retry_after_is_honoured():
    time = FakeTime()
    call = failing(transient(retry_after=7.0))

    call_with_retries(call, what="t", policy=POLICY, sleep=time.sleep, clock=time.clock)

    assert time.sleeps == [7.0]


def test_it_gives_up_when_the_next_wait_would_pass_the_deadline():
    time = FakeTime()
    policy = RetryPolicy(max_attempts=50, base=0.5, cap=4.0, deadline=10.0)
    call = failing(
        transient(retry_after=3.0),
        transient(retry_after=3.0),
        transient(retry_after=30.0),
        transient(),
    )

    with pytest.raises(GaveUp) as raised:
        call_with_retries(call, what="t", policy=policy, sleep=time.sleep, clock=time.clock)

    assert raised.value.attempts == 3
    assert time.sleeps == [3.0, 3.0]
