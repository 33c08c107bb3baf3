"""The webhooks reconciler (webhooks/reconcile.py): a final job's PENDING webhook that nobody is
sending (its task lost, or dead holding its claim) gets a delivery task again.

In-process, like tests/webhooks/test_delivery.py. Every test shares one database, so a pass
runs in an era of its own: the test's job is dated `ERA` ago and the pass is told it is then
(`webhooks_reconcile(now=...)`), so it finds this job and no other test's.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from frontservice.broker import JOBS, WEBHOOKS, process_broker
from jobs.models import Job, WebhookStatus
from tests.support.inprocess import run_tasks
from tests.support.inprocess_webhooks import attempts_of, finish_and_deliver, submit_with_callback
from tests.support.webhooks import Receiver, wait_for_webhook
from webhooks.reconcile import webhooks_reconcile

ERA = timedelta(days=20 * 365)


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def test_the_reconciler_sends_a_webhook_whose_task_was_lost(api, services, alice, receiver):
    created = submit_with_callback(api, alice, receiver.url())
    _, first = finish_and_deliver(api, alice, created["id"])
    # As if the job had just become final and its task were lost: pending, claimed by nobody.
    finished = timezone.now() - ERA
    lost = uuid.uuid4()
    Job.objects.filter(pk=first.pk).update(
        updated_at=finished,
        checked_at=None,
        webhook_status=WebhookStatus.PENDING,
        webhook_delivery_id=lost,
        webhook_claimed_at=None,
    )

    enqueued = webhooks_reconcile(
        webhook_after=timedelta(seconds=1), now=finished + timedelta(seconds=2)
    )
    # On the webhooks' queue: a receiver's wait holds none of the jobs' workers.
    assert [process_broker(queue).queue_size() for queue in (JOBS, WEBHOOKS)] == [0, 1]
    assert run_tasks() == [f"webhook-{first.id}"]
    job = wait_for_webhook(created["id"], timeout=0)

    assert enqueued == [created["id"]]
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert [r.headers["X-FrontService-Delivery"] for r in receiver.received] == [
        str(first.webhook_delivery_id),
        str(lost),
    ]


def test_a_webhook_pending_for_less_than_the_threshold_is_left_alone(
    api, services, alice, receiver
):
    created = submit_with_callback(api, alice, receiver.url())
    _, first = finish_and_deliver(api, alice, created["id"])
    finished = timezone.now() - ERA
    Job.objects.filter(pk=first.pk).update(
        updated_at=finished,
        checked_at=None,
        webhook_status=WebhookStatus.PENDING,
        webhook_claimed_at=None,
    )

    # Final for 30 s only: its task may simply not have run yet.
    enqueued = webhooks_reconcile(
        webhook_after=timedelta(minutes=1), now=finished + timedelta(seconds=30)
    )

    assert enqueued == []
    assert run_tasks() == []
    Job.objects.filter(pk=first.pk).update(webhook_status=WebhookStatus.DELIVERED)


def test_the_reconciler_leaves_a_webhook_being_sent_and_takes_over_a_dead_claim(
    api, services, alice, receiver
):
    created = submit_with_callback(api, alice, receiver.url())
    _, first = finish_and_deliver(api, alice, created["id"])
    now = timezone.now() - ERA
    # Final for two minutes, webhook pending, and a task claimed it just now: it is being sent.
    Job.objects.filter(pk=first.pk).update(
        updated_at=now - timedelta(minutes=2),
        checked_at=None,
        webhook_status=WebhookStatus.PENDING,
        webhook_claimed_at=now,
    )

    enqueued = webhooks_reconcile(webhook_after=timedelta(minutes=1), now=now)

    assert created["id"] not in enqueued
    # The claim is as old as the job's finish: its task died. The same event is sent again.
    Job.objects.filter(pk=first.pk).update(webhook_claimed_at=now - timedelta(minutes=2))

    enqueued = webhooks_reconcile(webhook_after=timedelta(minutes=1), now=now)
    run_tasks()
    job = wait_for_webhook(created["id"], timeout=0)

    assert enqueued == [created["id"]]
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert [attempt["attempt"] for attempt in attempts_of(job)] == [1, 2]
    assert [r.headers["X-FrontService-Delivery"] for r in receiver.received] == [
        str(first.webhook_delivery_id)
    ] * 2
