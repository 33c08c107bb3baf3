"""django-q2 tasks for webhooks. Thin: take a job id, call the service; running one twice is
harmless (the second finds the webhook claimed, delivered or given up)."""

import uuid

from orchestration.tasks import enqueue_job_task


def deliver_webhook(job_id: str) -> str | None:
    from webhooks.delivery import webhook_deliver

    status = webhook_deliver(job_id=uuid.UUID(job_id))
    return str(status) if status else None


def enqueue_webhook(job_id: uuid.UUID) -> bool:
    """Queue a job's webhook delivery; False (logged) when the broker is unreachable."""
    return enqueue_job_task(
        "webhooks.tasks.deliver_webhook",
        job_id,
        group="webhook",
        if_failed="webhook enqueue failed; the reconciler will enqueue it",
    )
