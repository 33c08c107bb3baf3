"""Retrying a downstream call inside a task: capped exponential backoff with full jitter.

The whole schedule is here. Attempt n (from 1) that fails with a retryable error waits
    uniform(0, min(cap, base * 2 ** (n - 1)))   seconds ("full jitter"),
or exactly what the service asked for in Retry-After, then tries again; it gives up after
`max_attempts` attempts, or earlier when the next wait would end past `deadline` seconds after
the first attempt. With the defaults (base 0.5 s, cap 30 s, 6 attempts, 300 s deadline) the
expected waits are 0.25, 0.5, 1, 2, 4 s: a short outage is ridden out, a long one is reported.
Permanent errors (4xx other than 408/429, see orchestration/clients/http.py) are not retried at all.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from frontservice.downstream import DownstreamError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base: float
    cap: float
    deadline: float

    @classmethod
    def from_settings(cls) -> "RetryPolicy":
        return cls(
            max_attempts=settings.DOWNSTREAM_RETRY_ATTEMPTS,
            base=settings.DOWNSTREAM_RETRY_BASE,
            cap=settings.DOWNSTREAM_RETRY_CAP,
            deadline=settings.DOWNSTREAM_RETRY_DEADLINE,
        )

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap, self.base * 2 ** (attempt - 1))


class GaveUp(Exception):
    """The call failed for good: `error` is the last failure, after `attempts` attempts."""

    def __init__(self, error: DownstreamError, attempts: int):
        super().__init__(f"{error} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.error = error
        self.attempts = attempts


def call_with_retries[T](
    call: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """Run `call` until it succeeds; return its result and the attempts it took, or GaveUp."""
    policy = policy or RetryPolicy.from_settings()
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except DownstreamError as error:
            if not error.retryable or attempt >= policy.max_attempts:
                raise GaveUp(error, attempt) from error
            wait = error.retry_after if error.retry_after is not None else policy.backoff(attempt)
            if clock() + wait - started > policy.deadline:
                raise GaveUp(error, attempt) from error
            logger.info("%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, error, wait)
            sleep(wait)
