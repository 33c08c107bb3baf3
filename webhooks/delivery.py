"""Delivering a finished job's webhook: the signed job document POSTed to its callback_url.

jobs.services.job_transition marks the webhook PENDING (with a new delivery id) in the same
compare-and-set that makes the job final and announces the change; this app's receiver
(webhooks/receivers.py) then enqueues `webhooks.tasks.deliver_webhook_task`, and the webhooks
reconciler (webhooks/reconcile.py) enqueues it again when that task was lost. A task first
claims the webhook (compare-and-set on `webhook_claimed_at`), so two tasks for one job never
send at once, and a claim older than Q_TIMEOUT (its task was killed) can be taken over.

Each attempt is recorded on the WebhookDelivery, and attempts are counted over every task run:
at most WEBHOOK_RETRY_ATTEMPTS per event, with frontservice/backoff.py's capped, jittered
backoff between them. 2xx: DELIVERED. 4xx other than 408/429, or a URL the SSRF guard now
refuses: FAILED at once. Anything else is retried, then FAILED.

Delivery is at least once: a receiver's 2xx can be lost, a task can die after sending. Every
attempt of one event carries the same X-FrontService-Delivery id, for receivers to dedupe on.
"""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from frontservice import mongo
from frontservice.backoff import GaveUp, RetryPolicy, call_with_retries
from frontservice.downstream import DownstreamError
from frontservice.queue import enqueue_task
from jobs.models import Job, WebhookStatus
from jobs.serializers import JobSerializer
from jobs.states import FINAL
from webhooks import sender, signing, ssrf
from webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

EVENT = "job.finished"
SERVICE = "webhook"  # as DownstreamError's service, in logs


def enqueue_webhook(job_id: uuid.UUID) -> bool:
    """Queue a job's webhook delivery; False (logged) when the broker is unreachable."""
    return enqueue_task(
        "webhooks.tasks.deliver_webhook_task",
        job_id,
        group="webhook",
        if_failed="webhook enqueue failed; the reconciler will enqueue it",
    )


def webhook_deliver(*, job_id: uuid.UUID) -> WebhookStatus | None:
    """Send the job's pending webhook; its final status, or None when there was nothing to do."""
    job = _claim(job_id)
    if job is None:
        logger.info("job %s: no webhook to send (none pending, or another task has it)", job_id)
        return None
    delivery = delivery_of(job)
    done = len(delivery.attempts)
    if done >= settings.WEBHOOK_RETRY_ATTEMPTS:
        # Every attempt was made by an earlier run that died before recording the outcome.
        return _finish(job, delivery, WebhookStatus.FAILED)
    # Rendered once: every attempt of this run sends the same bytes (the job is final).
    body = JSONRenderer().render(JobSerializer(job).data)
    attempt = done

    def send_once() -> None:
        nonlocal attempt
        attempt += 1
        outcome = _attempt(job, delivery, attempt=attempt, body=body)
        if not outcome.delivered:
            raise DownstreamError(
                SERVICE,
                outcome.error or "failed",
                status_code=outcome.status_code,
                retryable=outcome.retryable,
            )

    policy = RetryPolicy(
        max_attempts=settings.WEBHOOK_RETRY_ATTEMPTS - done,
        base=settings.WEBHOOK_RETRY_BASE,
        cap=settings.WEBHOOK_RETRY_CAP,
        deadline=settings.WEBHOOK_RETRY_DEADLINE,
    )
    try:
        call_with_retries(send_once, what=f"job {job.id}: webhook {delivery.id}", policy=policy)
    except GaveUp as gave_up:
        logger.warning("job %s: webhook %s failed for good: %s", job.id, delivery.id, gave_up)
        return _finish(job, delivery, WebhookStatus.FAILED)
    return _finish(job, delivery, WebhookStatus.DELIVERED)


def _claim(job_id: uuid.UUID) -> Job | None:
    now = timezone.now()
    # A claim older than a task may run belongs to a task that django-q2 killed, or that died.
    stale = now - timedelta(seconds=settings.Q_TIMEOUT)
    claimable = (
        Q(pk=job_id, status__in=list(FINAL), webhook_status=WebhookStatus.PENDING)
        & ~Q(callback_url="")
        & (Q(webhook_claimed_at__isnull=True) | Q(webhook_claimed_at__lte=stale))
    )
    if Job.objects.filter(claimable).update(webhook_claimed_at=now) != 1:
        return None
    return Job.objects.get(pk=job_id)


def delivery_of(job: Job) -> WebhookDelivery:
    """The record of the job's current event, made on first use (empty: no attempt yet)."""
    delivery, _ = WebhookDelivery.objects.get_or_create(
        pk=job.webhook_delivery_id,
        defaults={"job": job, "event": EVENT, "url": job.callback_url, "job_status": job.status},
    )
    return delivery


def _attempt(job: Job, delivery: WebhookDelivery, *, attempt: int, body: bytes) -> sender.Outcome:
    """One attempt: check the URL again, send to the checked address, record what happened."""
    started = time.monotonic()
    try:
        target = ssrf.check_url(job.callback_url)
    except ssrf.RefusedURL as exc:
        # Resolution failing is worth retrying; an address that is now refused is not.
        retryable = isinstance(exc, ssrf.ResolutionFailed)
        duration_ms = round((time.monotonic() - started) * 1000)
        outcome = sender.Outcome(
            address="", status_code=None, error=str(exc), duration_ms=duration_ms
        )
        _record(delivery, attempt=attempt, outcome=outcome)
        if not retryable:
            raise DownstreamError(SERVICE, f"refused: {exc}", retryable=False) from exc
        return outcome
    # Signed per attempt (a fresh timestamp) with the tenant's own secrets; a tenant without
    # one raises NoSigningSecret, which no retry can help: nothing is sent unsigned.
    headers = signing.signed_headers(
        tenant_id=job.tenant_id,
        delivery_id=str(delivery.id),
        event=EVENT,
        timestamp=int(time.time()),
        body=body,
    )
    # Attempts go round the host's addresses: a dead address does not fail every attempt.
    address = target.addresses[(attempt - 1) % len(target.addresses)]
    outcome = sender.post(target, address=address, body=body, headers=headers)
    _record(delivery, attempt=attempt, outcome=outcome)
    logger.info(
        "job %s: webhook %s attempt %d: %s",
        job.id,
        delivery.id,
        attempt,
        outcome.status_code or outcome.error,
        extra={
            "event": "webhook_attempt",
            "job_id": str(job.id),
            "delivery_id": str(delivery.id),
            "attempt": attempt,
            "status_code": outcome.status_code,
            "duration_ms": outcome.duration_ms,
        },
    )
    return outcome


def _record(delivery: WebhookDelivery, *, attempt: int, outcome: sender.Outcome) -> None:
    """Append the attempt to the delivery in one atomic update (no read-modify-write)."""
    entry = {
        "attempt": attempt,
        "at": timezone.now().isoformat(),
        "address": outcome.address,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    mongo.push(
        WebhookDelivery,
        delivery.pk,
        field="attempts",
        entry=entry,
        changes={"updated_at": timezone.now()},
    )


def _finish(job: Job, delivery: WebhookDelivery, status: WebhookStatus) -> WebhookStatus:
    # Only this event's webhook: an operator retry may have made the job final again since,
    # or sent the webhook again as a new event (webhooks/resend.py).
    Job.objects.filter(
        pk=job.pk, webhook_delivery_id=delivery.pk, webhook_status=WebhookStatus.PENDING
    ).update(webhook_status=status, webhook_claimed_at=None)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, updated_at=timezone.now())
    logger.info("job %s: webhook %s %s", job.id, delivery.id, status)
    return status
