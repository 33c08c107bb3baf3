"""The webhooks reconciler: final jobs whose webhook is PENDING and that nobody is sending (the
enqueue failed, the task was lost, or it died holding its claim) get a delivery task again.

Jobs are claimed like the worker tier's reconciler claims them (jobs.services.jobs_claim_idle,
compare-and-set on `checked_at`), so two passes at once never both enqueue one webhook.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from frontservice.request_log import log_context
from jobs.models import WebhookStatus
from jobs.services import jobs_claim_idle
from jobs.states import FINAL
from webhooks.delivery import enqueue_webhook

logger = logging.getLogger(__name__)


def webhooks_reconcile(
    *,
    webhook_after: timedelta | None = None,
    now: datetime | None = None,
    limit: int | None = None,
    budget_seconds: float | None = None,
) -> list[str]:
    """Enqueue the webhooks nobody is sending; the ids of their jobs."""
    now = now or timezone.now()
    # Like a stuck job: longer than a delivery task may run, so a running one is left alone.
    if webhook_after is None:
        webhook_after = timedelta(seconds=settings.RECONCILE_STUCK_AFTER)
    budget = settings.RECONCILE_PASS_SECONDS if budget_seconds is None else budget_seconds
    # A webhook waiting for its next attempt is the dispatcher's (webhooks/dispatch.py).
    unsent = Q(webhook_status=WebhookStatus.PENDING, webhook_next_attempt_at__isnull=True) & (
        Q(webhook_claimed_at__isnull=True) | Q(webhook_claimed_at__lte=now - webhook_after)
    )
    enqueued = []
    for job in jobs_claim_idle(
        *FINAL,
        idle_for=webhook_after,
        now=now,
        limit=limit or settings.RECONCILE_BATCH,
        deadline=time.monotonic() + budget,
        where=unsent,
    ):
        with log_context(job_id=str(job.id), request_id=job.request_id):
            logger.warning("job %s: webhook pending and not being sent; enqueued again", job.id)
            enqueue_webhook(job.id)
        enqueued.append(str(job.id))
    if enqueued:
        logger.info("reconcile: %d webhooks enqueued", len(enqueued))
    return enqueued
