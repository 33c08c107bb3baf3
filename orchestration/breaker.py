"""A circuit breaker per downstream service, shared by every worker process through MongoDB.

After CIRCUIT_FAILURE_THRESHOLD transient failures in a row the circuit opens: the tasks stop
calling the service (jobs for it wait with their next attempt due), and the dispatcher lets one
job through per CIRCUIT_PROBE_INTERVAL as a probe (`circuit_take_probe`, a compare-and-set, so
of many dispatchers one takes it). The probe's success closes the circuit and the waiting jobs
go; its failure opens it for another interval.

Libraries (pybreaker, purgatory) keep this state in each process, or in Redis; the workers are
many processes, Redis is optional here, and their storage is read-then-write, with nothing to
let exactly one probe through across processes. So the record is a small document per service,
changed only by single-document updates conditioned on what the caller read.
"""

import contextlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from orchestration.models import CircuitBreaker, CircuitState

logger = logging.getLogger(__name__)


def circuit_allows(service: str) -> bool:
    """Whether a task may call `service` now: not while its circuit is open (a probe is let
    through by the dispatcher, which makes the circuit half-open first)."""
    circuit = CircuitBreaker.objects.filter(pk=service).first()
    return circuit is None or circuit.state != CircuitState.OPEN


def circuit_state(service: str) -> str:
    circuit = CircuitBreaker.objects.filter(pk=service).first()
    return CircuitState.CLOSED if circuit is None else circuit.state


def circuit_record_success(service: str) -> None:
    """The service answered: close its circuit (a write only when there is something to reset)."""
    closed = (
        CircuitBreaker.objects.filter(pk=service)
        .exclude(state=CircuitState.CLOSED, failures=0)
        .update(
            state=CircuitState.CLOSED,
            failures=0,
            opened_at=None,
            probe_at=None,
            updated_at=timezone.now(),
        )
    )
    if closed:
        logger.info("circuit %s: closed (the service answered)", service)


def circuit_record_failure(service: str, *, now: datetime | None = None) -> None:
    """A transient failure of `service`: count it; open the circuit at the threshold, and again
    when it was a probe's (half-open)."""
    now = now or timezone.now()
    _ensure(service)
    CircuitBreaker.objects.filter(pk=service).update(failures=F("failures") + 1, updated_at=now)
    circuit = CircuitBreaker.objects.get(pk=service)
    reopen = {"state": CircuitState.OPEN, "opened_at": now, "probe_at": now + _interval()}
    if circuit.state == CircuitState.HALF_OPEN:
        CircuitBreaker.objects.filter(pk=service, state=CircuitState.HALF_OPEN).update(**reopen)
        logger.info("circuit %s: probe failed; open again", service)
    elif (
        circuit.state == CircuitState.CLOSED
        and circuit.failures >= settings.CIRCUIT_FAILURE_THRESHOLD
        # Compare-and-set: of the workers that saw the threshold, one opens it and logs.
        and CircuitBreaker.objects.filter(pk=service, state=CircuitState.CLOSED).update(**reopen)
    ):
        logger.warning(
            "circuit %s: open after %d failures in a row; probing every %gs",
            service,
            circuit.failures,
            settings.CIRCUIT_PROBE_INTERVAL,
        )


def circuit_take_probe(service: str, *, now: datetime | None = None) -> bool:
    """Take the probe lease of an open circuit whose interval has passed (or whose last probe's
    lease ran out); True for the one caller that got it."""
    now = now or timezone.now()
    taken = CircuitBreaker.objects.filter(
        pk=service,
        state__in=[CircuitState.OPEN, CircuitState.HALF_OPEN],
        probe_at__lte=now,
    ).update(state=CircuitState.HALF_OPEN, probe_at=now + _interval(), updated_at=now)
    return taken == 1


def _interval() -> timedelta:
    return timedelta(seconds=settings.CIRCUIT_PROBE_INTERVAL)


def _ensure(service: str) -> None:
    if CircuitBreaker.objects.filter(pk=service).exists():
        return
    # Another worker may make it first.
    with contextlib.suppress(IntegrityError):
        CircuitBreaker.objects.create(service=service)
