"""django-q2 tasks for webhooks. Thin: take a job id, call the service; running one twice is
harmless (the second finds the webhook claimed, delivered or given up). Their log lines carry
the job id and the id of the request that created the job (frontservice/request_log.py)."""

import uuid

from frontservice.request_log import log_context
from jobs.queries import job_log_fields
from webhooks import reconcile
from webhooks.delivery import webhook_deliver


def deliver_webhook_task(job_id: str) -> str | None:
    with log_context(**job_log_fields(job_id)):
        status = webhook_deliver(job_id=uuid.UUID(job_id))
    return str(status) if status else None


def reconcile_webhooks_task() -> str:
    """The periodic pass over webhooks nobody is sending (scheduled by webhooks.schedules)."""
    return f"{len(reconcile.webhooks_reconcile())} webhooks enqueued"
