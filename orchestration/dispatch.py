"""The dispatcher: enqueues the jobs whose next attempt has come.

A transient failure leaves a job in its in-flight status with `next_attempt_at` set
(orchestration/services.py). Each pass takes the due jobs of each step, oldest due first, on
the (status, next_attempt_at) index, in batches, and claims each with a compare-and-set that
clears `next_attempt_at` before enqueueing it: two dispatchers at once (two workers) enqueue a
job once. A job whose task is then lost is the reconciler's, as any job idle in its status.

While a service's circuit is open (orchestration/breaker.py) its due jobs stay as they are, and
one of them is let through per CIRCUIT_PROBE_INTERVAL as the probe. Jobs past the retry horizon
are let through too: their task records the end of the step (its error state).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from jobs.models import Job
from orchestration.breaker import circuit_state, circuit_take_probe
from orchestration.models import CircuitState
from orchestration.services import SERVICE_OF, enqueue_orchestration

logger = logging.getLogger(__name__)


def dispatch_pass() -> dict[str, list[str]]:
    """Every app's dispatcher (settings.DISPATCHERS) once; what each enqueued, by its name."""
    return {path: import_string(path)() for path in settings.DISPATCHERS}


def jobs_dispatch_due(*, now: datetime | None = None, limit: int | None = None) -> list[str]:
    """One pass: enqueue the jobs whose next attempt is due; their ids."""
    now = now or timezone.now()
    limit = limit or settings.DISPATCH_BATCH
    dispatched: list[str] = []
    for status, service in SERVICE_OF.items():
        due = Job.objects.filter(status=status, next_attempt_at__lte=now).order_by(
            "next_attempt_at"
        )
        if circuit_state(service) == CircuitState.CLOSED:
            candidates = list(due[:limit])
        else:
            horizon = timedelta(seconds=settings.DOWNSTREAM_RETRY_HORIZON)
            candidates = list(due.filter(retrying_since__lte=now - horizon)[:limit])
            if circuit_take_probe(service, now=now):
                probe = due.exclude(pk__in=[job.pk for job in candidates]).first()
                if probe is not None:
                    logger.info("circuit %s: job %s goes as the probe", service, probe.id)
                    candidates.append(probe)
        dispatched += [str(job.id) for job in candidates if _claim_and_enqueue(job, now=now)]
    if dispatched:
        logger.info("dispatch: %d jobs due enqueued", len(dispatched))
    return dispatched


def _claim_and_enqueue(job: Job, *, now: datetime) -> bool:
    # Compare-and-set on the due time as read: of two dispatchers, one clears it and enqueues.
    # updated_at moves, so the reconciler gives the task RECONCILE_STUCK_AFTER before it looks.
    claimed = Job.objects.filter(
        pk=job.pk, status=job.status, next_attempt_at=job.next_attempt_at
    ).update(next_attempt_at=None, updated_at=now)
    if claimed != 1:
        return False
    if not enqueue_orchestration(job.id):
        # The broker is unreachable: due again at once, for the next pass.
        Job.objects.filter(pk=job.pk, status=job.status, next_attempt_at=None).update(
            next_attempt_at=now
        )
        return False
    return True
