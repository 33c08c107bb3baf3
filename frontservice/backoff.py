"""When a failed downstream call is tried again: capped exponential backoff with full jitter,
over a retry horizon. The whole schedule is here; nothing sleeps it.

A caller makes one attempt per task delivery. After attempt n (from 1) fails with a retryable
error, the next attempt is due
    uniform(0, min(cap, base * 2 ** (n - 1)))   seconds later ("full jitter"),
or exactly when the service asked for in Retry-After, and never after the horizon's end: the
last attempt is made at the horizon. A failure at or past `horizon` seconds after the first
failed attempt of the step is the last: the caller gives up. With the orchestration's defaults
(base 0.5 s, cap 30 s, horizon 1 hour) the expected waits are 0.25, 0.5, 1, 2, 4, 8, 15, then
15 s on average: a deploy or failover of a downstream service is ridden out, and a service that
stays down for an hour is reported. The circuit breaker (orchestration/breaker.py) keeps jobs
waiting while a service is down, so that waiting costs the service one probe per interval.

Permanent errors (4xx other than 408/429, see orchestration/clients/http.py) are not retried.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    base: float
    cap: float
    horizon: float

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The full-jitter wait after failed attempt `attempt` (from 1)."""
        # The exponent is bounded: 2 ** 1000 is a float overflow, and the cap is long reached.
        return rng() * min(self.cap, self.base * 2 ** min(attempt - 1, 64))

    def gives_up(self, *, retrying_for: float) -> bool:
        """Whether a failure `retrying_for` seconds after the step's first one is the last."""
        return retrying_for >= self.horizon

    def delay(
        self,
        attempt: int,
        *,
        retrying_for: float,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """Seconds until the next attempt, after failed attempt `attempt`, `retrying_for` seconds
        into the horizon; Retry-After, when the service sent one, instead of the backoff."""
        wait = retry_after if retry_after is not None else self.backoff(attempt, rng)
        return max(0.0, min(wait, self.horizon - retrying_for))
