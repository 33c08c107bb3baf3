"""What the webhooks app does when the domain announces a change (jobs/signals.py)."""

import uuid

from jobs.models import WebhookStatus
from webhooks.delivery import enqueue_webhook


def enqueue_pending_webhook(sender, *, job_id: uuid.UUID, changes: dict, **kwargs) -> None:
    """A change that made a webhook pending (a job with a callback became final): send it.

    Not enqueued (broker down): the webhook stays PENDING and the webhooks reconciler
    (webhooks/reconcile.py) enqueues it.
    """
    if changes.get("webhook_status") == WebhookStatus.PENDING:
        enqueue_webhook(job_id)
