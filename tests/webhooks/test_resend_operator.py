"""webhooks.resend.webhook_resend: an operator sends one job's FAILED webhook again, as a new
event, as `manage.py retry_webhooks` and the admin's action do. The command's selection and
table are in tests/jobs/management/test_retry_webhooks.py.

In-process: the new event's delivery task is run by `run_tasks()`, to a receiver on loopback.
"""

import uuid

import pytest

from jobs.models import Job, WebhookStatus
from tests.support.inprocess import run_tasks
from tests.support.webhooks import Receiver
from webhooks.models import WebhookDelivery
from webhooks.resend import WebhookResendOutcome, webhook_resend


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def failed_webhook(alice, receiver):
    """A final job whose webhook to the receiver FAILED; deleted afterwards."""
    job = Job.objects.create(
        tenant_id=alice.tenant_id,
        sub=alice.sub,
        status="EXECUTION_COMPLETED",
        callback_url=receiver.url(),
        base_url="http://testserver",
        webhook_status=WebhookStatus.FAILED,
        webhook_delivery_id=uuid.uuid4(),
    )
    yield job
    WebhookDelivery.objects.filter(job_id=job.pk).delete()
    job.delete()


def test_a_webhook_changed_since_it_was_read_is_not_sent_twice(services, failed_webhook, receiver):
    failed = failed_webhook
    stale = Job.objects.get(pk=failed.pk)  # what a second operator read at the same time

    first = webhook_resend(failed, by="operator:carol", reason="one")
    second = webhook_resend(stale, by="operator:dave", reason="two")
    assert run_tasks() == [f"webhook-{failed.id}"]
    job = Job.objects.get(pk=failed.pk)

    assert (first.action, second.action) == ("resend", "skip")
    assert second.detail == "changed concurrently"
    assert job.webhook_delivery_id == first.delivery_id
    assert [entry["by"] for entry in job.history] == ["operator:carol"]
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert len(receiver.received) == 1


def test_the_new_event_is_recorded_before_its_task_runs(services, failed_webhook, receiver):
    failed_delivery = failed_webhook.webhook_delivery_id
    outcome = webhook_resend(failed_webhook, by="operator:carol", reason="receiver fixed")

    assert outcome == WebhookResendOutcome(
        failed_webhook.id, "FAILED", "resend", outcome.delivery_id, "sent as a new event"
    )
    assert outcome.delivery_id not in (None, failed_delivery)
    job = Job.objects.get(pk=failed_webhook.pk)
    assert (job.webhook_status, job.webhook_delivery_id) == (
        WebhookStatus.PENDING,
        outcome.delivery_id,
    )
    delivery = WebhookDelivery.objects.get(pk=outcome.delivery_id)
    assert (delivery.status, delivery.attempts, delivery.url) == (
        WebhookStatus.PENDING,
        [],
        receiver.url(),
    )
    assert receiver.received == []

    run_tasks()

    delivery.refresh_from_db()
    assert delivery.status == WebhookStatus.DELIVERED and len(delivery.attempts) == 1
    [received] = receiver.received
    assert received.headers["X-FrontService-Delivery"] == str(outcome.delivery_id)
