import uuid

from django.db import models
from django.urls import reverse

from jobs.states import FINAL, Status


class WebhookStatus(models.TextChoices):
    """Where a job's completion webhook stands (webhooks/delivery.py): the job's outbox field,
    read by the webhooks app, and the status of each of its WebhookDelivery records."""

    PENDING = "PENDING"  # to be sent (or being sent: see Job.webhook_claimed_at)
    DELIVERED = "DELIVERED"  # the receiver answered 2xx
    FAILED = "FAILED"  # given up: a 4xx (not 408/429), or every attempt failed


class Job(models.Model):
    # A random UUID: ids are unguessable, and the blob and remote job ids derive from it.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, db_column="_id")
    tenant_id = models.CharField(max_length=200)
    sub = models.CharField(max_length=200)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.CREATED)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    input_size = models.BigIntegerField(default=0)
    blob_id = models.CharField(max_length=128, blank=True, default="")
    remote_job_id = models.CharField(max_length=128, blank=True, default="")
    # The last downstream failure: {"service", "message", "status_code", "attempts", "at"}.
    error = models.JSONField(null=True, blank=True, default=None)
    # Downstream attempts of the current step (store, then submit): reset when the step
    # succeeds or an operator sends the job on again. Shown on the job document.
    attempts = models.PositiveIntegerField(default=0)
    # Task deliveries that did not record an outcome (reset by every attempt that did); bounded
    # by ORCHESTRATION_MAX_ATTEMPTS, so a task that keeps killing its worker ends in an error
    # state instead of looping.
    deliveries = models.PositiveIntegerField(default=0)
    # When the next attempt of the current step is due after a transient failure; the
    # dispatcher (orchestration/dispatch.py) enqueues the job then. Null: not waiting.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=None)
    # The first failed attempt of the current step: the retry horizon counts from here.
    retrying_since = models.DateTimeField(null=True, blank=True, default=None)
    # When the reconciler last claimed this job (re-enqueue or refresh); one claim per window
    # makes two reconcilers running at once harmless.
    checked_at = models.DateTimeField(null=True, blank=True, default=None)
    # Every status change, appended atomically with the change itself:
    # [{"at", "from", "to", "reason"}, ...]
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Completion webhook (docs/api.md "Webhooks"). The URL was checked by the SSRF guard at POST
    # time and never changes afterwards. Empty: no callback (the job document says null).
    callback_url = models.CharField(max_length=2048, blank=True, default="")
    # Scheme and host the job was submitted to ("https://api.example.com"): the webhook's
    # document carries absolute links like the API's answers, built from the same Host.
    base_url = models.CharField(max_length=2048, blank=True, default="")
    # Set in the same compare-and-set that makes the job final (jobs.services.job_transition),
    # so a final job with a callback can never be without a pending webhook. A new delivery id
    # per finalization: an operator retry that finishes the job again sends a new event, and
    # so does sending a FAILED webhook again (webhooks/resend.py).
    # Empty: no webhook (no callback, or not final yet).
    webhook_status = models.CharField(
        max_length=16, choices=WebhookStatus.choices, blank=True, default=""
    )
    webhook_delivery_id = models.UUIDField(null=True, blank=True, default=None)
    # When a delivery task took the webhook on; a claim older than Q_TIMEOUT is a dead task's.
    webhook_claimed_at = models.DateTimeField(null=True, blank=True, default=None)
    # The X-Request-ID of the POST that created the job (empty: created outside a request), so
    # the user's request id finds every log line about the job (frontservice/request_log.py).
    request_id = models.CharField(max_length=128, blank=True, default="")
    # When the next attempt of a PENDING webhook is due after a failed one; the dispatcher
    # (webhooks/dispatch.py) enqueues it then. Null: not waiting.
    webhook_next_attempt_at = models.DateTimeField(null=True, blank=True, default=None)

    class Meta:
        indexes = [
            # The reconciler's look for webhooks nobody is sending.
            models.Index(fields=["webhook_status", "updated_at"], name="job_webhook_status"),
            # The dispatcher's look for webhooks whose next attempt is due.
            models.Index(
                fields=["webhook_status", "webhook_next_attempt_at"],
                name="job_webhook_next_attempt",
            ),
            # Owner lookups: every API read filters on (tenant_id, sub) and the id or the date.
            # The listing (jobs/api/listing.py) walks it in order, newest first, with the id as the
            # tie-break, so the id is in it: a page costs about a page of index entries.
            models.Index(
                fields=["tenant_id", "sub", "-created_at", "-id"], name="job_owner_created_id"
            ),
            models.Index(fields=["status", "updated_at"], name="job_status_updated"),
            # The dispatcher's look for jobs whose next attempt is due.
            models.Index(fields=["status", "next_attempt_at"], name="job_status_next_attempt"),
            # The per-owner cap on jobs not yet final counts by status (jobs/api/limits.py).
            models.Index(fields=["tenant_id", "sub", "status"], name="job_owner_status"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("job-status", kwargs={"job_id": self.id})

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


class IdempotencyKey(models.Model):
    """A POST's Idempotency-Key, scoped to its owner, and the answer it got.

    Expired records are removed by a TTL index on `expires_at` (migration 0003) and ignored by
    the code before that (MongoDB's TTL monitor runs about once a minute).
    """

    tenant_id = models.CharField(max_length=200)
    sub = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    # sha256 of the content type and the body: the same key with another request is refused.
    request_hash = models.CharField(max_length=64)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "sub", "key"], name="idempotency_owner_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.sub}: {self.key}"
