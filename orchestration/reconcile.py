"""The reconciler: a periodic pass that finds work nobody is doing and gets it done.

- Jobs stuck in CREATED or STORED (the enqueue failed, the broker lost the task, the worker
  died with the Redis broker) are enqueued again; jobs waiting for their next attempt are the
  dispatcher's (orchestration/dispatch.py).
- SUBMITTED jobs that nobody polls are refreshed from JobService, on a slower cadence, so the
  stored status (admin, listings) does not go stale.
- CANCELLING jobs (JobService could not be reached when the owner cancelled) get their cancel
  sent to JobService again, on the same cadence, until it ends them (jobs/cancel.py).
- Staged inputs that no retry can need any more are deleted (see `staging_cleanup`).

Webhooks nobody is sending are the webhooks app's to find (webhooks/reconcile.py); `manage.py
reconcile` runs both passes.

Each job is claimed with a compare-and-set on `checked_at` before anything is done to it, so two
reconcilers running at once (two clusters) never both act on the same job in one window. Each
job is acted on right after its claim, and a pass stops after RECONCILE_PASS_SECONDS: a pass
cut short (its task timed out, its process was killed) loses at most the one job it was on,
whose claim simply expires, and the next pass goes on where it stopped.
"""

import logging
import time
import uuid
from dataclasses import astuple, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from frontservice.request_log import log_context
from jobs import staging
from jobs.models import Job
from jobs.services import jobs_claim_idle
from jobs.states import Status
from orchestration.cancel import job_cancel_downstream
from orchestration.refresh import job_refresh
from orchestration.services import enqueue_orchestration

logger = logging.getLogger(__name__)


@dataclass
class Report:
    requeued: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    cancel_retried: list[str] = field(default_factory=list)
    staged_removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether the pass did anything (every field is a list of what it did)."""
        return any(astuple(self))

    def __str__(self) -> str:
        return (
            f"{len(self.requeued)} requeued, {len(self.refreshed)} refreshed, "
            f"{len(self.cancel_retried)} cancels retried, "
            f"{len(self.staged_removed)} staged files removed"
        )


def reconcile(
    *,
    stuck_after: timedelta | None = None,
    refresh_after: timedelta | None = None,
    now: datetime | None = None,
    limit: int | None = None,
    budget_seconds: float | None = None,
) -> Report:
    now = now or timezone.now()
    stuck_after = _seconds(stuck_after, settings.RECONCILE_STUCK_AFTER)
    refresh_after = _seconds(refresh_after, settings.RECONCILE_REFRESH_AFTER)
    limit = limit or settings.RECONCILE_BATCH
    budget = settings.RECONCILE_PASS_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    report = Report()
    claim = {"now": now, "limit": limit, "deadline": deadline}
    # A job waiting for its next attempt is the dispatcher's (orchestration/dispatch.py).
    waiting = Q(next_attempt_at__isnull=False)
    stuck = jobs_claim_idle(
        Status.CREATED, Status.STORED, idle_for=stuck_after, where=~waiting, **claim
    )
    # Each job's lines carry its id and its creating request's (frontservice/request_log.py).
    for job in stuck:
        with log_context(job_id=str(job.id), request_id=job.request_id):
            logger.warning(
                "job %s: stuck in %s since %s; enqueued again", job.id, job.status, job.updated_at
            )
            enqueue_orchestration(job.id)
        report.requeued.append(str(job.id))
    for job in jobs_claim_idle(Status.SUBMITTED, idle_for=refresh_after, **claim):
        with log_context(job_id=str(job.id), request_id=job.request_id):
            job_refresh(job)
        report.refreshed.append(str(job.id))
    for job in jobs_claim_idle(Status.CANCELLING, idle_for=refresh_after, **claim):
        with log_context(job_id=str(job.id), request_id=job.request_id):
            job_cancel_downstream(job)
        report.cancel_retried.append(str(job.id))
    if time.monotonic() < deadline:
        report.staged_removed = staging_cleanup(now=now)
    if report:
        logger.info("reconcile: %s", report)
    return report


def _seconds(value: timedelta | None, default_seconds: float) -> timedelta:
    return value if value is not None else timedelta(seconds=default_seconds)


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
