"""An operator sends a failed webhook again, as a new event (webhooks/resend.py, through
`manage.py retry_webhooks`). In-process, like tests/webhooks/test_delivery.py."""

import io
import json

from django.conf import settings
from django.core.management import call_command

from jobs.models import WebhookStatus
from tests.support.inprocess import run_tasks
from tests.support.inprocess_webhooks import finish_and_deliver, submit_with_callback
from tests.support.webhooks import Receiver, verifies, wait_for_webhook
from webhooks.models import WebhookDelivery


def test_an_operator_sends_a_failed_webhook_again_as_a_new_event(api, services, alice):
    # The receiver refuses the first event (a 410 gives up at once), then accepts.
    receiver = Receiver(answers=[410]).start()
    try:
        created = submit_with_callback(api, alice, receiver.url())
        final, failed = finish_and_deliver(api, alice, created["id"])
        assert failed.webhook_status == WebhookStatus.FAILED

        out = io.StringIO()
        call_command(
            "retry_webhooks",
            "--job",
            created["id"],
            "--by",
            "carol",
            "--reason",
            "receiver fixed",
            stdout=out,
        )
        assert run_tasks() == [f"webhook-{created['id']}"]
        job = wait_for_webhook(created["id"], timeout=0)
    finally:
        receiver.stop()

    assert job.webhook_status == WebhookStatus.DELIVERED
    assert job.webhook_delivery_id != failed.webhook_delivery_id
    assert str(job.webhook_delivery_id) in out.getvalue()
    assert out.getvalue().splitlines()[-1] == "1 sent again, 0 skipped."
    first, second = receiver.received
    assert first.headers["X-FrontService-Delivery"] == str(failed.webhook_delivery_id)
    # A new event: a new delivery id, signed afresh, the same job document.
    assert second.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)
    assert second.headers["X-FrontService-Event"] == "job.finished"
    assert verifies(second, settings.WEBHOOK_SECRET)
    document = json.loads(second.body)
    assert (document["id"], document["status"]) == (created["id"], "EXECUTION_COMPLETED")
    old = WebhookDelivery.objects.get(pk=failed.webhook_delivery_id)
    assert old.status == WebhookStatus.FAILED
    assert [attempt["status_code"] for attempt in old.attempts] == [410]
    new = WebhookDelivery.objects.get(pk=job.webhook_delivery_id)
    assert (new.status, new.job_status) == (WebhookStatus.DELIVERED, "EXECUTION_COMPLETED")
    assert [(a["attempt"], a["status_code"]) for a in new.attempts] == [(1, 200)]
    # Who and why, in the history; the job's status and finish time are unchanged.
    entry = job.history[-1]
    assert (entry["from"], entry["to"]) == ("EXECUTION_COMPLETED", "EXECUTION_COMPLETED")
    assert entry["by"] == "operator:carol"
    assert entry["reason"] == "webhook sent again (receiver fixed)"
    assert api.status_of(alice, created["id"]).json()["finished_at"] == final["finished_at"]
