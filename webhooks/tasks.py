"""django-q2 tasks for webhooks. Thin: take a job id, call the service; running one twice is
harmless (the second finds the webhook claimed, delivered or given up)."""

import logging
import uuid

from django_q.tasks import async_task

from orchestration.broker import process_broker

logger = logging.getLogger(__name__)


def deliver_webhook(job_id: str) -> str | None:
    from webhooks.delivery import webhook_deliver

    status = webhook_deliver(job_id=uuid.UUID(job_id))
    return str(status) if status else None


def enqueue_webhook(job_id: uuid.UUID) -> bool:
    """Queue a job's webhook delivery; False (logged) when the broker is unreachable."""
    try:
        async_task(
            "webhooks.tasks.deliver_webhook",
            str(job_id),
            task_name=f"webhook-{job_id}",
            group="webhook",
            broker=process_broker(),
        )
    except Exception:
        logger.exception("job %s: webhook enqueue failed; the reconciler will enqueue it", job_id)
        return False
    return True
