"""The webhooks app's own record: every event sent to a job's callback_url, with its attempts.

The job itself holds the outbox (Job.webhook_status and webhook_delivery_id, set in the same
compare-and-set that makes it final); a WebhookDelivery is the history of one such event.
"""

from django.db import models

from jobs.models import Job, WebhookStatus


class WebhookDelivery(models.Model):
    """One event sent to a job's callback_url, with every attempt made to send it.

    The id is the `X-FrontService-Delivery` header, the same on every retry of the event, so
    a receiver that gets it twice (a lost 2xx, a redelivered task) can tell.
    """

    id = models.UUIDField(primary_key=True, editable=False, db_column="_id")
    job = models.ForeignKey(
        Job,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="webhook_deliveries",
    )
    event = models.CharField(max_length=64, default="job.finished")
    url = models.CharField(max_length=2048)
    # The job's status the event reports.
    job_status = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.PENDING
    )
    # Appended atomically, one per HTTP attempt:
    # [{"attempt", "at", "address", "status_code", "error", "duration_ms"}, ...]
    attempts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        # Where this model has always been stored (it started in the jobs app): moving the
        # model between apps moved no data.
        db_table = "jobs_webhookdelivery"
        indexes = [models.Index(fields=["job", "-created_at"], name="webhook_job_created")]

    def __str__(self) -> str:
        return f"{self.event} {self.id} ({self.status})"
