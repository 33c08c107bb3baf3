"""The reconciler: a periodic pass that finds work nobody is doing and gets it done.

- Jobs stuck in CREATED or STORED (the enqueue failed, the broker lost the task, the worker
  died with the Redis broker) are enqueued again.
- SUBMITTED jobs that nobody polls are refreshed from JobService, on a slower cadence, so the
  stored status (admin, listings) does not go stale.
- CANCELLING jobs (JobService could not be reached when the owner cancelled) get their cancel
  sent to JobService again, on the same cadence, until it ends them (jobs/cancel.py).
- Staged inputs that no retry can need any more are deleted (see `staging_cleanup`).
- Final jobs whose webhook is still PENDING and not being sent (its task was lost, or died)
  get a delivery task again (webhooks/delivery.py).

Each job is claimed with a compare-and-set on `checked_at` before anything is done to it, so two
reconcilers running at once (two clusters) never both act on the same job in one window. Each
job is acted on right after its claim, and a pass stops after RECONCILE_PASS_SECONDS: a pass
cut short (its task timed out, its process was killed) loses at most the one job it was on,
whose claim simply expires, and the next pass goes on where it stopped.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import astuple, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.cancel import job_cancel_downstream
from jobs.models import Job, WebhookStatus
from jobs.services import job_refresh
from jobs.states import FINAL, Status
from orchestration import staging, tasks
from webhooks.tasks import enqueue_webhook

logger = logging.getLogger(__name__)


@dataclass
class Report:
    requeued: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    cancel_retried: list[str] = field(default_factory=list)
    staged_removed: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether the pass did anything (every field is a list of what it did)."""
        return any(astuple(self))

    def __str__(self) -> str:
        return (
            f"{len(self.requeued)} requeued, {len(self.refreshed)} refreshed, "
            f"{len(self.cancel_retried)} cancels retried, "
            f"{len(self.staged_removed)} staged files removed, "
            f"{len(self.webhooks)} webhooks enqueued"
        )


def reconcile(
    *,
    stuck_after: timedelta | None = None,
    refresh_after: timedelta | None = None,
    webhook_after: timedelta | None = None,
    now: datetime | None = None,
    limit: int | None = None,
    budget_seconds: float | None = None,
) -> Report:
    now = now or timezone.now()
    stuck_after = _seconds(stuck_after, settings.RECONCILE_STUCK_AFTER)
    # Like a stuck job: longer than a delivery task may run, so a running one is left alone.
    webhook_after = _seconds(webhook_after, settings.RECONCILE_STUCK_AFTER)
    refresh_after = _seconds(refresh_after, settings.RECONCILE_REFRESH_AFTER)
    limit = limit or settings.RECONCILE_BATCH
    budget = settings.RECONCILE_PASS_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    report = Report()
    stuck = _claim(Status.CREATED, Status.STORED, idle_for=stuck_after, now=now, limit=limit)
    for job in _until(deadline, stuck):
        logger.warning(
            "job %s: stuck in %s since %s; enqueued again", job.id, job.status, job.updated_at
        )
        tasks.enqueue_orchestration(job.id)
        report.requeued.append(str(job.id))
    unpolled = _claim(Status.SUBMITTED, idle_for=refresh_after, now=now, limit=limit)
    for job in _until(deadline, unpolled):
        job_refresh(job)
        report.refreshed.append(str(job.id))
    cancelling = _claim(Status.CANCELLING, idle_for=refresh_after, now=now, limit=limit)
    for job in _until(deadline, cancelling):
        job_cancel_downstream(job)
        report.cancel_retried.append(str(job.id))
    unsent = Q(webhook_status=WebhookStatus.PENDING) & (
        Q(webhook_claimed_at__isnull=True) | Q(webhook_claimed_at__lte=now - webhook_after)
    )
    unsent_jobs = _claim(*FINAL, idle_for=webhook_after, now=now, limit=limit, where=unsent)
    for job in _until(deadline, unsent_jobs):
        logger.warning("job %s: webhook pending and not being sent; enqueued again", job.id)
        enqueue_webhook(job.id)
        report.webhooks.append(str(job.id))
    if time.monotonic() < deadline:
        report.staged_removed = staging_cleanup(now=now)
    if report:
        logger.info("reconcile: %s", report)
    return report


def _seconds(value: timedelta | None, default_seconds: float) -> timedelta:
    return value if value is not None else timedelta(seconds=default_seconds)


def _until(deadline: float, jobs: Iterator[Job]) -> Iterator[Job]:
    """The jobs, until the pass's time is up (checked before each claim, not after)."""
    while time.monotonic() < deadline:
        job = next(jobs, None)
        if job is None:
            return
        yield job
    jobs.close()


def _claim(
    *statuses: str, idle_for: timedelta, now: datetime, limit: int, where: Q | None = None
) -> Iterator[Job]:
    """Jobs in `statuses` idle for `idle_for` (and matching `where`), each claimed by this pass
    alone, one at a time.

    A generator: each job is claimed only when the caller is ready to act on it, so a pass that
    stops early leaves the rest unclaimed for the next one.
    """
    cutoff = now - idle_for
    idle = Q(status__in=statuses, updated_at__lte=cutoff) & (
        Q(checked_at__isnull=True) | Q(checked_at__lte=cutoff)
    )
    if where is not None:
        idle &= where
    candidates = list(Job.objects.filter(idle).order_by("updated_at")[:limit])
    for job in candidates:
        # Compare-and-set on the same condition: of two passes, one gets 1, the other 0.
        if Job.objects.filter(idle, pk=job.pk).update(checked_at=now) == 1:
            yield job


# Ids per `pk__in` lookup: the embedded server refuses an `$in` of about 450 UUIDs and more
# ("Expression tree is too large"); real MongoDB takes far more, and 200 costs it nothing.
_LOOKUP_CHUNK = 200


def staging_cleanup(*, now: datetime) -> list[str]:
    """Delete staged inputs no retry can need; return what was removed.

    Kept: inputs of CREATED jobs (not stored yet) and of STORED_ERROR jobs (an operator retry
    stores them again) for STAGING_ERROR_RETENTION. Removed: inputs of every other job, inputs
    whose job does not exist (after a grace period: the API stages the file just before it
    inserts the job), and abandoned partial uploads.
    """
    orphan_cutoff = (now - timedelta(seconds=settings.STAGING_ORPHAN_AFTER)).timestamp()
    error_cutoff = now - timedelta(seconds=settings.STAGING_ERROR_RETENTION)
    root = staging.staging_root()
    removed = []
    staged = {}
    for path in root.iterdir():
        try:
            staged[uuid.UUID(path.name)] = path
        except ValueError:
            continue  # tmp/ and anything that is not a staged input
    jobs = {}
    ids = list(staged)
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        jobs.update(
            (job.id, job) for job in Job.objects.filter(pk__in=chunk).only("status", "updated_at")
        )
    for job_id, path in staged.items():
        job = jobs.get(job_id)
        if job is None:
            needed = _mtime(path) > orphan_cutoff
        elif job.status == Status.CREATED:
            needed = True
        elif job.status == Status.STORED_ERROR:
            needed = job.updated_at > error_cutoff
        else:
            needed = False
        if not needed:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    for path in (root / "tmp").iterdir():
        # A partial upload's file is written continuously; one untouched this long is abandoned.
        if _mtime(path) < orphan_cutoff:
            path.unlink(missing_ok=True)
            removed.append(f"tmp/{path.name}")
    return removed


def _mtime(path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: neither needed nor to be removed
