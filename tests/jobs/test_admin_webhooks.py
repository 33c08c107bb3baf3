"""The job's admin page (jobs/admin.py) shows its webhook deliveries, every attempt of each,
read only."""

import uuid

from jobs.models import Job, WebhookStatus
from webhooks.models import WebhookDelivery


def test_operators_see_every_attempt_on_the_job_page():
    from django.urls import reverse

    from tests.support.admin import logged_in, staff_user

    hex_ = uuid.uuid4().hex[:10]
    job = Job.objects.create(
        tenant_id=f"tenant-{hex_}",
        sub=f"sub-{hex_}",
        status="EXECUTION_COMPLETED",
        callback_url="https://hooks.example.com/frontservice",
        webhook_status=WebhookStatus.FAILED,
        webhook_delivery_id=uuid.uuid4(),
    )
    delivery = WebhookDelivery.objects.create(
        id=job.webhook_delivery_id,
        job=job,
        url=job.callback_url,
        job_status=job.status,
        status=WebhookStatus.FAILED,
        attempts=[
            {
                "attempt": 1,
                "at": "2026-01-05T10:00:00+00:00",
                "address": "93.184.215.14",
                "status_code": 503,
                "error": "HTTP 503: busy",
                "duration_ms": 12,
            },
            {
                "attempt": 2,
                "at": "2026-01-05T10:00:01+00:00",
                "address": "93.184.215.14",
                "status_code": 410,
                "error": "HTTP 410: gone",
                "duration_ms": 9,
            },
        ],
    )
    try:
        client = logged_in(staff_user(superuser=True))
        page = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    finally:
        delivery.delete()
        job.delete()

    assert page.status_code == 200
    html = page.content.decode()
    assert "Completion webhook" in html
    assert str(delivery.id) in html
    assert "HTTP 503: busy" in html and "HTTP 410: gone" in html
    assert "2026-01-05 10:00:01 UTC" in html
    # Read only, like the job itself.
    assert 'name="webhook_deliveries-0-status"' not in html
