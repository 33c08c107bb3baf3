"""The job admin's "Send webhook again" action: a FAILED webhook is sent again as a new event
(really, by the stack's worker, to a receiver on loopback); any other is skipped, with why.
Who may run it is in tests/test_admin.py's permission matrix, with the other actions."""

import re
import uuid

import pytest

from jobs.models import Job, WebhookStatus
from tests.support.admin import JOIN_FREE_BACKEND, logged_in, staff_user
from tests.support.webhooks import Receiver, wait_for_webhook

CHANGELIST = "/admin/jobs/job/"
RESEND = "resend_selected_webhooks"


def _resend(client, *job_ids):
    return client.post(
        CHANGELIST, {"action": RESEND, "_selected_action": [str(i) for i in job_ids]}, follow=True
    )


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _job(owner, webhook_status, *, callback_url="https://hooks.example.com/x") -> Job:
    return Job.objects.create(
        tenant_id=owner.tenant_id,
        sub=owner.sub,
        status="EXECUTION_ERROR",
        callback_url=callback_url,
        base_url="http://testserver",
        webhook_status=webhook_status,
        webhook_delivery_id=uuid.uuid4() if webhook_status else None,
    )


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def test_a_superuser_sends_a_failed_webhook_again(stack, alice, receiver):
    failed = _job(alice, WebhookStatus.FAILED, callback_url=receiver.url())
    delivered = _job(alice, WebhookStatus.DELIVERED)
    no_callback = _job(alice, "", callback_url="")
    admin = staff_user(superuser=True)

    response = _resend(logged_in(admin), failed.id, delivered.id, no_callback.id)
    job = wait_for_webhook(str(failed.id))

    assert response.status_code == 200
    assert _messages(response) == [
        "1 sent again, 2 skipped.",
        "Skipped 1: delivered (the receiver answered 2xx); sending it again would be a "
        "duplicate the receiver cannot recognise.",
        "Skipped 1: no callback_url.",
    ]
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert job.webhook_delivery_id != failed.webhook_delivery_id
    [received] = receiver.received
    assert received.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)
    [entry] = job.history
    assert (entry["from"], entry["to"]) == ("EXECUTION_ERROR", "EXECUTION_ERROR")
    assert (entry["by"], entry["reason"]) == (
        f"admin:{admin.username}",
        "webhook sent again (from admin)",
    )
    for untouched in (delivered, no_callback):
        stored = Job.objects.get(pk=untouched.pk)
        assert stored.history == [] and stored.webhook_status == untouched.webhook_status


def test_a_user_with_the_change_permission_is_offered_it(settings, alice):
    settings.AUTHENTICATION_BACKENDS = [JOIN_FREE_BACKEND]
    client = logged_in(staff_user(perms=("view_job", "change_job")))
    pending = _job(alice, WebhookStatus.PENDING)
    try:
        page = client.get(CHANGELIST)
        response = _resend(client, pending.id)
    finally:
        pending.delete()  # or the reconciler would try to send it

    assert RESEND in re.findall(r'<option value="(\w+)"', page.content.decode())
    assert _messages(response) == [
        "0 sent again, 1 skipped.",
        "Skipped 1: pending: queued or being sent (the reconciler sends a lost one).",
    ]
