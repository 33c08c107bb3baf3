"""Job services: plain functions that views, tasks and commands call."""

import logging
import uuid
from pathlib import Path

from django.db import connection
from django.utils import timezone
from pymongo import ReturnDocument

from frontservice import metrics
from jobs.models import Job, WebhookStatus
from jobs.states import FINAL, REMOTE_STATUS, Status, can_transition

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
    """Record a CREATED job for a staged input and enqueue its orchestration."""
    from orchestration import staging, tasks

    job = Job(
        tenant_id=tenant_id,
        sub=sub,
        content_type=content_type,
        input_size=size,
        callback_url=callback_url,
        base_url=base_url,
    )
    # The staged file is named after the job before the job exists, so a worker never sees
    # a job whose input is not in place yet.
    staging.promote(staged_file, job.id)
    try:
        job.save(force_insert=True)
    except BaseException:
        staging.discard(job.id)
        raise
    # If enqueueing fails the job stays CREATED and is found again by its age (issue 3's
    # reconciler); the user still gets their 202 and their job id.
    metrics.job_created()
    tasks.enqueue_orchestration(job.id)
    return job


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
    if webhook:
        from webhooks.tasks import enqueue_webhook

        # Not enqueued (broker down): the webhook stays PENDING and the reconciler enqueues it.
        enqueue_webhook(job_id)
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
            "tenant": changed.get(_column("tenant_id")),
            "from": str(from_status),
            "to": str(to_status),
            "reason": reason,
            "by": by,
        },
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
        },
    )
    return delivery_id if changed is not None else None


def _record_change(
    job_id: uuid.UUID, *, match: dict, to_status: str, reason: str, by: str, fields: dict | None
) -> dict | None:
    """One atomic single-document update: the fields, and the history entry that explains them.

    Returns the job's owner as it was matched (for the log line), or None when nothing matched.
    """
    now = timezone.now()
    changes = {"status": to_status, "updated_at": now, **(fields or {})}
    entry = {
        "at": now.isoformat(),
        "from": match["status"],
        "to": to_status,
        "reason": reason,
        "by": by,
    }
    pk = Job._meta.pk
    return _collection().find_one_and_update(
        {
            pk.column: pk.get_db_prep_value(job_id, connection),
            **{_column(name): _db_value(name, value) for name, value in match.items()},
        },
        {
            "$set": {_column(name): _db_value(name, value) for name, value in changes.items()},
            "$push": {"history": entry},
        },
        projection={_column("tenant_id"): 1},
        return_document=ReturnDocument.BEFORE,
    )


def job_claim_submit(job_id: uuid.UUID, *, remote_job_id: str) -> bool:
    """Mark a STORED job as being submitted (its remote job id set); False if it is not STORED.

    A worker claims the submit before it sends anything to JobService, so a cancel can tell a
    job JobService cannot have (no claim: cancelled locally, and this claim then fails) from one
    whose submit may be in flight (claimed: cancelled in JobService). See jobs/cancel.py.
    """
    pk = Job._meta.pk
    claimed = _collection().find_one_and_update(
        {
            pk.column: pk.get_db_prep_value(job_id, connection),
            _column("status"): _db_value("status", Status.STORED),
        },
        {"$set": {_column("remote_job_id"): _db_value("remote_job_id", remote_job_id)}},
        projection={pk.column: 1},
    )
    return claimed is not None


def job_refresh(job: Job) -> Job:
    """Ask JobService about a SUBMITTED job, store what changed, return the current job.

    A CANCELLING job's cancel is sent to JobService again instead (jobs/cancel.py).
    """
    from orchestration.clients import job_service
    from orchestration.clients.http import DownstreamError

    if job.status == Status.CANCELLING:
        from jobs.cancel import job_cancel_downstream

        return job_cancel_downstream(job)
    if job.status != Status.SUBMITTED:
        return job
    try:
        remote = job_service.get_job(job.remote_job_id)
    except DownstreamError as exc:
        # The user gets the last known status; the next poll asks again.
        logger.warning("job %s: status refresh failed: %s", job.id, exc)
        return job
    target = REMOTE_STATUS.get(remote.status)
    if target is None:
        return job
    return job_settle(
        job, to_status=target, reason=f"JobService reported {remote.status}", remote=remote
    )


def job_settle(job: Job, *, to_status: str, reason: str, remote=None) -> Job:
    """Store the end JobService reported (its job `remote`, when there is one) with a
    compare-and-set from the job's current status; return the job as stored.

    Shared by the status refresh and the cancel (jobs/cancel.py).
    """
    error = None
    if to_status == Status.EXECUTION_ERROR and remote is not None:
        error = error_detail(service="jobservice", message=remote.error or remote.status)
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
        "at": timezone.now().isoformat(),
    }


def _collection():
    return connection.get_collection(Job._meta.db_table)


def _column(name: str) -> str:
    return Job._meta.get_field(name).column


def _db_value(name: str, value):
    return Job._meta.get_field(name).get_db_prep_save(value, connection)
