"""Delivering a finished job's webhook: the signed job document POSTed to its callback_url.

jobs.services.job_transition marks the webhook PENDING (with a new delivery id) in the same
compare-and-set that makes the job final and announces the change; this app's receiver
(webhooks/receivers.py) then enqueues `webhooks.tasks.deliver_webhook_task`, and the webhooks
reconciler (webhooks/reconcile.py) enqueues it again when that task was lost. A task first
claims the webhook (compare-and-set on `webhook_claimed_at`), so two tasks for one job never
send at once, and a claim older than Q_TIMEOUT (its task was killed) can be taken over.

A task makes one attempt and releases its worker. Each attempt is recorded on the
WebhookDelivery. 2xx: DELIVERED. 4xx other than 408/429, or a URL the SSRF guard now refuses:
FAILED at once. Anything else leaves the webhook PENDING with its next attempt due later
(`Job.webhook_next_attempt_at`, frontservice/backoff.py's schedule), when the dispatcher
(webhooks/dispatch.py) enqueues it again; FAILED only once WEBHOOK_RETRY_HORIZON has passed since
the event's first attempt. A receiver that never answers costs a worker one read timeout per
attempt, never a sleep.

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
from frontservice.backoff import Schedule
from frontservice.broker import WEBHOOKS
from frontservice.queue import enqueue_task
from jobs.models import Job, WebhookStatus
from jobs.serializers import JobSerializer
from jobs.states import FINAL
from webhooks import sender, signing, ssrf
from webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

EVENT = "job.finished"


def enqueue_webhook(job_id: uuid.UUID) -> bool:
    """Queue a job's webhook delivery; False (logged) when the broker is unreachable."""
    return enqueue_task(
        "webhooks.tasks.deliver_webhook_task",
        job_id,
        group="webhook",
        if_failed="webhook enqueue failed; the reconciler will enqueue it",
        queue=WEBHOOKS,  # its own workers: a slow receiver holds none that jobs need
    )


def webhook_deliver(*, job_id: uuid.UUID) -> WebhookStatus | None:
    """Make one attempt at the job's pending webhook; its status after it (PENDING: another
    attempt is due later), or None when there was nothing to do."""
    job = _claim(job_id)
    if job is None:
        logger.info("job %s: no webhook to send (none pending, not due, or being sent)", job_id)
        return None
    delivery = delivery_of(job)
    retrying_for = (timezone.now() - delivery.created_at).total_seconds()
    # The last attempt is due at the horizon; one a task can no longer be making is past it by
    # more than a task may run: its run died after the attempt, before recording the outcome.
    if delivery.attempts and schedule().gives_up(retrying_for=retrying_for - settings.Q_TIMEOUT):
        return _finish(job, delivery, WebhookStatus.FAILED)
    body = JSONRenderer().render(JobSerializer(job).data)
    attempt = len(delivery.attempts) + 1
    try:
        outcome = _attempt(job, delivery, attempt=attempt, body=body)
    except _Refused:
        logger.warning("job %s: webhook %s: the URL is refused now", job.id, delivery.id)
        return _finish(job, delivery, WebhookStatus.FAILED)
    if outcome.delivered:
        return _finish(job, delivery, WebhookStatus.DELIVERED)
    retrying_for = (timezone.now() - delivery.created_at).total_seconds()
    if not outcome.retryable or schedule().gives_up(retrying_for=retrying_for):
        logger.warning(
            "job %s: webhook %s failed for good after %d attempts: %s",
            job.id,
            delivery.id,
            attempt,
            outcome.status_code or outcome.error,
        )
        return _finish(job, delivery, WebhookStatus.FAILED)
    delay = schedule().delay(attempt, retrying_for=retrying_for)
    _wait(job, delivery, due=timezone.now() + timedelta(seconds=delay))
    return WebhookStatus.PENDING


def schedule() -> Schedule:
    return Schedule(
        base=settings.WEBHOOK_RETRY_BASE,
        cap=settings.WEBHOOK_RETRY_CAP,
        horizon=settings.WEBHOOK_RETRY_HORIZON,
    )


def _wait(job: Job, delivery: WebhookDelivery, *, due) -> None:
    # Only this event's webhook, as in _finish; the claim is released for the next attempt.
    Job.objects.filter(
        pk=job.pk, webhook_delivery_id=delivery.pk, webhook_status=WebhookStatus.PENDING
    ).update(webhook_next_attempt_at=due, webhook_claimed_at=None)
    logger.info("job %s: webhook %s next attempt at %s", job.id, delivery.id, due.isoformat())


class _Refused(Exception):
    """The SSRF guard refuses the callback's address now: no attempt can succeed."""


def _claim(job_id: uuid.UUID) -> Job | None:
    now = timezone.now()
    # A claim older than a task may run belongs to a task that django-q2 killed, or that died.
    stale = now - timedelta(seconds=settings.Q_TIMEOUT)
    claimable = (
        Q(pk=job_id, status__in=list(FINAL), webhook_status=WebhookStatus.PENDING)
        & ~Q(callback_url="")
        & (Q(webhook_claimed_at__isnull=True) | Q(webhook_claimed_at__lte=stale))
        # Waiting for its next attempt: a task delivered early leaves it to the dispatcher.
        & (Q(webhook_next_attempt_at__isnull=True) | Q(webhook_next_attempt_at__lte=now))
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
            raise _Refused from exc
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
    ).update(webhook_status=status, webhook_claimed_at=None, webhook_next_attempt_at=None)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, updated_at=timezone.now())
    logger.info("job %s: webhook %s %s", job.id, delivery.id, status)
    return status
