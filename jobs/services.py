"""Job services: the domain's plain functions, which views, tasks and commands call.

They change the database and announce what changed (jobs/signals.py); they never enqueue a task
or call another service. The worker tier and webhooks subscribe to the announcements.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from django.db.models import Q
from django.utils import timezone

from frontservice import metrics, mongo
from frontservice.request_log import current_request_id, log_bind
from jobs import staging
from jobs.models import Job, WebhookStatus
from jobs.signals import job_created, job_status_changed
from jobs.states import FINAL, Status, can_transition

logger = logging.getLogger(__name__)


class IllegalTransition(Exception):
    """A programming error: the caller asked for a change the transition table forbids."""


def job_create(
    *,
    tenant_id: str,
    sub: str,
    staged_file: Path,
    size: int,
    content_type: str,
    callback_url: str = "",
    base_url: str = "",
) -> Job:
    """Record a CREATED job for a staged input and announce it (the worker tier enqueues it)."""
    job = Job(
        tenant_id=tenant_id,
        sub=sub,
        content_type=content_type,
        input_size=size,
        callback_url=callback_url,
        base_url=base_url,
        # The id the user got back in X-Request-ID: the worker's, reconciler's and webhooks'
        # log lines about this job carry it (orchestration/tasks.py, webhooks/tasks.py).
        request_id=current_request_id() or "",
    )
    # The staged file is named after the job before the job exists, so a worker never sees
    # a job whose input is not in place yet.
    staging.promote(staged_file, job.id)
    try:
        # Not through save(): see frontservice/mongo.py.
        mongo.insert(job)
    except BaseException:
        staging.discard(job.id)
        raise
    # MongoDB keeps milliseconds: the answer to the POST shows the times every later read shows.
    job.created_at = _as_stored(job.created_at)
    job.updated_at = _as_stored(job.updated_at)
    # The rest of this request's log lines (its access line among them) name the job.
    log_bind(job_id=str(job.id))
    metrics.job_created()
    # If enqueueing fails the job stays CREATED and the reconciler finds it by its age; the
    # user still gets their 202 and their job id.
    job_created.send(sender=Job, job=job)
    return job


def _as_stored(at: datetime) -> datetime:
    """A time as BSON stores it: to the millisecond, the rest cut off."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def job_transition(
    job_id: uuid.UUID,
    *,
    from_status: str,
    to_status: str,
    reason: str,
    fields: dict | None = None,
    by: str = "frontservice",
    match: dict | None = None,
) -> bool:
    """Compare-and-set the status; True only for the caller whose change was applied.

    The update matches on the current status, so of two workers (or a worker and a status
    request) racing, exactly one wins and the other sees False. The history entry is pushed in
    the same single-document update, so history and status can never disagree. `by` says who
    made the change (the service itself, an operator, the owner). `match` names further fields
    the job must still hold for the change to apply.
    """
    if not can_transition(from_status, to_status):
        raise IllegalTransition(f"{from_status} -> {to_status}")
    webhook = _webhook_fields(job_id, to_status)
    changed = _record_change(
        job_id,
        match={**(match or {}), "status": from_status},
        to_status=to_status,
        reason=reason,
        by=by,
        fields={**(fields or {}), **webhook},
    )
    if changed is None:
        return False
    metrics.job_transitioned(from_status, to_status)
    # One JSON line per status change (frontservice/request_log.py adds the request id).
    logger.info(
        "job %s %s -> %s (%s)",
        job_id,
        from_status,
        to_status,
        reason,
        extra={
            "event": "job_status",
            "job_id": str(job_id),
            "tenant": changed.get(mongo.column(Job, "tenant_id")),
            "from": str(from_status),
            "to": str(to_status),
            "reason": reason,
            "by": by,
        },
    )
    job_status_changed.send(
        sender=Job,
        job_id=job_id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        by=by,
        changes={**(fields or {}), **webhook},
    )
    return True


def _webhook_fields(job_id: uuid.UUID, to_status: str) -> dict:
    """The pending webhook to record with a change to a final status, when the job has a callback.

    Recorded in the change's own update, so no final job with a callback is ever without it.
    The callback is read before the compare-and-set; it never changes after the POST.
    """
    if to_status not in FINAL:
        return {}
    if not Job.objects.filter(pk=job_id).exclude(callback_url="").exists():
        return {}
    return {
        "webhook_status": WebhookStatus.PENDING,
        "webhook_delivery_id": uuid.uuid4(),
        "webhook_claimed_at": None,
        "webhook_next_attempt_at": None,
    }


def job_requeue(job: Job, *, reason: str, by: str, fields: dict | None = None) -> bool:
    """Record that a job is sent on again in its current status (no transition).

    The status alone cannot tell whether someone else got there first (it does not change), so
    this also compares on `updated_at`, which every change moves: of two requeues at once, one
    wins and the other sees False.
    """
    changed = _record_change(
        job.id,
        match={"status": job.status, "updated_at": job.updated_at},
        to_status=job.status,
        reason=reason,
        by=by,
        fields=fields,
    )
    applied = changed is not None
    if applied:
        logger.info("job %s requeued in %s by %s (%s)", job.id, job.status, by, reason)
    return applied


def job_webhook_renew(job: Job, *, reason: str, by: str) -> uuid.UUID | None:
    """Make a final job's FAILED webhook PENDING again, as a new event; its new delivery id.

    A compare-and-set on the webhook as `job` shows it (FAILED, with that delivery id): of two
    operators at once, one renews it and the other gets None, as does a job changed meanwhile.
    The new delivery id starts a new WebhookDelivery, so its attempts are counted from none.
    Recorded in the history (status unchanged) with who and why, in the same update.
    """
    delivery_id = uuid.uuid4()
    changed = _record_change(
        job.id,
        match={
            "status": job.status,
            "webhook_status": WebhookStatus.FAILED,
            "webhook_delivery_id": job.webhook_delivery_id,
        },
        to_status=job.status,
        reason=f"webhook sent again ({reason})",
        by=by,
        fields={
            "webhook_status": WebhookStatus.PENDING,
            "webhook_delivery_id": delivery_id,
            "webhook_claimed_at": None,
            "webhook_next_attempt_at": None,
        },
    )
    return delivery_id if changed is not None else None


def _record_change(
    job_id: uuid.UUID, *, match: dict, to_status: str, reason: str, by: str, fields: dict | None
) -> dict | None:
    """One atomic single-document update: the fields, and the history entry that explains them.

    Returns the job's owner as it was matched (for the log line), or None when nothing matched.
    """
    # To the millisecond, as the job's own times are stored: the history's times (submitted_at
    # and finished_at are read from it) match updated_at to the digit.
    now = _as_stored(timezone.now())
    entry = {
        "at": now.isoformat(),
        "from": match["status"],
        "to": to_status,
        "reason": reason,
        "by": by,
    }
    return mongo.compare_and_set(
        Job,
        job_id,
        match=match,
        changes={"status": to_status, "updated_at": now, **(fields or {})},
        push={mongo.column(Job, "history"): entry},
        before=("tenant_id",),
    )


def job_claim_submit(job_id: uuid.UUID, *, remote_job_id: str) -> bool:
    """Mark a STORED job as being submitted (its remote job id set); False if it is not STORED.

    A worker claims the submit before it sends anything to JobService, so a cancel can tell a
    job JobService cannot have (no claim: cancelled locally, and this claim then fails) from one
    whose submit may be in flight (claimed: cancelled in JobService). See jobs/cancel.py.
    """
    claimed = mongo.compare_and_set(
        Job, job_id, match={"status": Status.STORED}, changes={"remote_job_id": remote_job_id}
    )
    return claimed is not None


def job_settle(job: Job, *, to_status: str, reason: str, remote_error: str | None = None) -> Job:
    """Store the end JobService reported with a compare-and-set from the job's current status;
    return the job as stored. `remote_error`: JobService's account of a failed execution.

    Shared by the status refresh and the cancel (orchestration/refresh.py, orchestration/cancel.py).
    """
    error = None
    if to_status == Status.EXECUTION_ERROR and remote_error is not None:
        error = error_detail(service="jobservice", message=remote_error)
    job_transition(
        job.id,
        from_status=job.status,
        to_status=to_status,
        reason=reason,
        fields={"error": error} if error else None,
    )
    # Whoever won the race, the stored state is the truth.
    job.refresh_from_db()
    return job


def error_detail(*, service: str, message: str, status_code: int | None = None) -> dict:
    return {
        "service": service,
        "message": message[:500],
        "status_code": status_code,
        "at": _as_stored(timezone.now()).isoformat(),
    }


def jobs_claim_idle(
    *statuses: str,
    idle_for: timedelta,
    now: datetime,
    limit: int,
    deadline: float,
    where: Q | None = None,
) -> Iterator[Job]:
    """Jobs in `statuses` idle for `idle_for` (and matching `where`), each claimed for this
    caller alone (a reconciler pass), one at a time, until the monotonic `deadline`.

    A claim is a compare-and-set on `checked_at`, so two passes running at once (two clusters)
    never both act on the same job in one window. A generator: each job is claimed only when the
    caller is ready to act on it, and the deadline is checked before each claim, so a pass that
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
        if time.monotonic() >= deadline:
            return
        # Compare-and-set on the same condition: of two passes, one gets 1, the other 0.
        if Job.objects.filter(idle, pk=job.pk).update(checked_at=now) == 1:
            yield job
