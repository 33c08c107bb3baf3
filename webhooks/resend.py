"""Operator retries of completion webhooks: send a FAILED one again, as a new event.

Only a FAILED webhook is sent again. A DELIVERED one is not: the receiver answered 2xx, and a
new event (a new X-FrontService-Delivery id) would be a duplicate it cannot recognise. A PENDING
one is queued or being sent, and the reconciler sends one whose task was lost. The new event is
recorded with a compare-and-set (jobs.services.job_webhook_renew), then its delivery task is
enqueued; from there it is delivered, retried and recorded like any other
(webhooks/delivery.py), with a WEBHOOK_RETRY_HORIZON of its own.
Used by `manage.py retry_webhooks` and by the admin's "Send webhook again" action.
"""

import uuid
from dataclasses import dataclass
from typing import Literal

from jobs.models import Job, WebhookStatus
from jobs.services import job_webhook_renew
from webhooks.delivery import delivery_of, enqueue_webhook

Action = Literal["resend", "skip"]

_SKIP = {
    WebhookStatus.DELIVERED: "delivered (the receiver answered 2xx); sending it again would be a "
    "duplicate the receiver cannot recognise",
    WebhookStatus.PENDING: "pending: queued or being sent (the reconciler sends a lost one)",
}


@dataclass(frozen=True)
class WebhookResendOutcome:
    job_id: uuid.UUID
    webhook_status: str  # before the retry
    action: Action
    delivery_id: uuid.UUID | None  # the new event's; None when skipped, or in a dry run
    detail: str


def webhook_resend(
    job: Job, *, by: str, reason: str, dry_run: bool = False
) -> WebhookResendOutcome:
    """Send the job's FAILED webhook again if it is one; say what was (or would be) done.

    `job` is the caller's copy: the compare-and-set is on the webhook it shows, so one that
    someone else sent again (or that changed) since it was read is "changed concurrently".
    """
    status = job.webhook_status

    def skip(detail: str) -> WebhookResendOutcome:
        return WebhookResendOutcome(job.id, status, "skip", None, detail)

    if not job.callback_url:
        return skip("no callback_url")
    if not job.is_final:
        # Its webhook is sent when it is final. (An operator's retry_jobs may have sent a job
        # with a FAILED webhook on again: its next final status gives it a new event anyway.)
        return skip("not final yet; the webhook is sent when it is")
    if status in _SKIP:
        return skip(_SKIP[status])
    if status != WebhookStatus.FAILED:
        # A final job without one finished before webhooks were kept.
        return skip("no webhook recorded")
    if dry_run:
        return WebhookResendOutcome(job.id, status, "resend", None, "would be sent as a new event")
    delivery_id = job_webhook_renew(job, reason=reason, by=by)
    if delivery_id is None:
        return skip("changed concurrently")
    # Recorded now (PENDING, no attempt yet), so the job's page shows it before the task runs.
    job.webhook_status, job.webhook_delivery_id = WebhookStatus.PENDING, delivery_id
    delivery_of(job)
    detail = "sent as a new event"
    if not enqueue_webhook(job.id):
        detail = f"{detail}; enqueue failed, the reconciler will send it"
    return WebhookResendOutcome(job.id, status, "resend", delivery_id, detail)
