"""The webhooks' dispatcher: enqueues the pending webhooks whose next attempt has come.

Like the jobs' (orchestration/dispatch.py): due webhooks oldest first, on the
(webhook_status, webhook_next_attempt_at) index, in batches, each claimed with a compare-and-set
that clears its due time before it is enqueued, so two dispatchers at once enqueue it once.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from jobs.models import Job, WebhookStatus
from webhooks.delivery import enqueue_webhook

logger = logging.getLogger(__name__)


def webhooks_dispatch_due(*, now: datetime | None = None, limit: int | None = None) -> list[str]:
    """One pass: enqueue the webhooks whose next attempt is due; their jobs' ids."""
    now = now or timezone.now()
    due = Job.objects.filter(
        webhook_status=WebhookStatus.PENDING, webhook_next_attempt_at__lte=now
    ).order_by("webhook_next_attempt_at")[: limit or settings.DISPATCH_BATCH]
    dispatched = []
    for job in due:
        claimed = Job.objects.filter(
            pk=job.pk,
            webhook_delivery_id=job.webhook_delivery_id,
            webhook_next_attempt_at=job.webhook_next_attempt_at,
        ).update(webhook_next_attempt_at=None)
        if claimed != 1:
            continue
        if not enqueue_webhook(job.id):
            # The broker is unreachable: due again at once, for the next pass.
            Job.objects.filter(pk=job.pk, webhook_next_attempt_at=None).update(
                webhook_next_attempt_at=now
            )
            continue
        dispatched.append(str(job.id))
    if dispatched:
        logger.info("dispatch: %d webhooks due enqueued", len(dispatched))
    return dispatched
