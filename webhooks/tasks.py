"""django-q2 tasks for webhooks. Thin: take a job id, call the service; running one twice is
harmless (the second finds the webhook claimed, delivered or given up)."""

import uuid

from webhooks import reconcile
from webhooks.delivery import webhook_deliver


def deliver_webhook_task(job_id: str) -> str | None:
    status = webhook_deliver(job_id=uuid.UUID(job_id))
    return str(status) if status else None


def reconcile_webhooks_task() -> str:
    """The periodic pass over webhooks nobody is sending (scheduled by webhooks.schedules)."""
    return f"{len(reconcile.webhooks_reconcile())} webhooks enqueued"
