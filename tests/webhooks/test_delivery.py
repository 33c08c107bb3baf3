"""Delivering a finished job's webhook (webhooks/delivery.py): the signed job document POSTed
to its callback_url when the job is final, retried, recorded, behind the SSRF guard.

In-process: jobs are submitted through DRF's test client, the orchestration and the delivery
tasks are run by run_tasks(). The receiver is a real HTTP server on 127.0.0.1 that each test
starts on a free port; the test settings allow-list 127.0.0.1/32 (tests/embedded_database.py),
and nothing else that is not public. One delivery through the running stack is in
tests/e2e/test_webhooks.py.
"""

import json
import uuid
from datetime import datetime

import pytest
from django.conf import settings

from jobs.models import Job, WebhookStatus
from tests.support.api import Owner
from tests.support.inprocess import run_tasks, wait_for_status
from tests.support.inprocess_webhooks import (
    FINISHED,
    attempts_of,
    finish_and_deliver,
    post_job,
    submit_with_callback,
)
from tests.support.webhooks import Receiver, verifies, wait_for_webhook
from webhooks.delivery import enqueue_webhook
from webhooks.models import WebhookDelivery

OTHER_SECRET = "not-the-secret"
# The base URL DRF's test client requests come from, which the job's absolute links use.
TEST_SERVER = "http://testserver"


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def test_it_posts_the_signed_job_document_when_the_job_completes(api, services, alice, receiver):
    created = submit_with_callback(api, alice, receiver.url())

    assert created["callback_url"] == receiver.url()
    final, job = finish_and_deliver(api, alice, created["id"])

    assert final["status"] == "EXECUTION_COMPLETED"
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert (job.callback_url, job.base_url) == (receiver.url(), TEST_SERVER)
    [received] = receiver.received
    assert received.path == "/hooks/frontservice"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-FrontService-Event"] == "job.finished"
    assert received.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)
    assert received.headers["Host"] == f"127.0.0.1:{receiver.port}"
    # The same document, absolute links included, that the status endpoint answers.
    assert json.loads(received.body) == api.status_of(alice, created["id"]).json()
    assert json.loads(received.body)["links"]["output"].startswith(f"{TEST_SERVER}/api/v1/job/")
    assert verifies(received, settings.WEBHOOK_SECRET)
    assert not verifies(received, OTHER_SECRET)
    delivery = WebhookDelivery.objects.get(pk=job.webhook_delivery_id)
    assert (delivery.job_id, delivery.event, delivery.url) == (
        job.id,
        "job.finished",
        job.callback_url,
    )
    assert (delivery.status, delivery.job_status) == (
        WebhookStatus.DELIVERED,
        "EXECUTION_COMPLETED",
    )
    [attempt] = delivery.attempts
    assert attempt["attempt"] == 1
    assert (attempt["status_code"], attempt["error"]) == (200, None)
    assert attempt["address"] == "127.0.0.1"
    assert attempt["duration_ms"] >= 0 and attempt["at"]


def test_nothing_is_sent_before_the_job_is_final(api, services, alice, receiver):
    created = submit_with_callback(api, alice, receiver.url())

    run_tasks()  # stored and submitted: not final yet

    job = Job.objects.get(pk=created["id"])
    assert job.status == "SUBMITTED"
    assert (job.webhook_status, job.webhook_delivery_id) == ("", None)
    assert receiver.received == []
    finish_and_deliver(api, alice, created["id"])
    assert len(receiver.received) == 1


def test_it_posts_the_document_of_a_failed_job(api, services, alice, receiver):
    created = submit_with_callback(api, alice, receiver.url(), data=b"#fail this one")

    final, job = finish_and_deliver(api, alice, created["id"])

    assert final["status"] == "EXECUTION_ERROR"
    assert job.webhook_status == WebhookStatus.DELIVERED
    [received] = receiver.received
    document = json.loads(received.body)
    assert document["status"] == "EXECUTION_ERROR"
    assert document["error"]["service"] == "jobservice"
    assert verifies(received, settings.WEBHOOK_SECRET)


def test_a_tenant_with_its_own_secret_gets_deliveries_signed_with_it(api, services, receiver):
    owner = Owner(tenant_id="webhook-tenant-with-own-secret", sub=f"carol-{uuid.uuid4().hex[:8]}")
    created = submit_with_callback(api, owner, receiver.url())

    finish_and_deliver(api, owner, created["id"])

    [received] = receiver.received
    [own_secret] = settings.WEBHOOK_TENANT_SECRETS[owner.tenant_id]
    assert verifies(received, own_secret)
    assert not verifies(received, settings.WEBHOOK_SECRET)


def test_a_job_without_a_callback_sends_nothing(api, services, alice, receiver):
    response = post_job(api, alice)
    assert response.status_code == 202, response.content

    wait_for_status(api, alice, response.json()["id"], FINISHED)

    assert run_tasks() == []  # no delivery enqueued
    assert response.json()["callback_url"] is None
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.callback_url, job.webhook_status, job.webhook_delivery_id) == ("", "", None)
    assert not WebhookDelivery.objects.filter(job=job).exists()
    assert receiver.received == []


def test_it_retries_until_the_receiver_accepts(api, services, alice):
    receiver = Receiver(answers=[500, 429, 503]).start()
    try:
        created = submit_with_callback(api, alice, receiver.url())
        _, job = finish_and_deliver(api, alice, created["id"])
    finally:
        receiver.stop()

    assert job.webhook_status == WebhookStatus.DELIVERED
    assert [attempt["status_code"] for attempt in attempts_of(job)] == [500, 429, 503, 200]
    assert [attempt["attempt"] for attempt in attempts_of(job)] == [1, 2, 3, 4]
    assert attempts_of(job)[0]["error"].startswith("HTTP 500")
    assert len(receiver.received) == 4
    # One event: the same delivery id on every attempt, each attempt signed afresh.
    assert {r.headers["X-FrontService-Delivery"] for r in receiver.received} == {
        str(job.webhook_delivery_id)
    }
    assert all(verifies(received, settings.WEBHOOK_SECRET) for received in receiver.received)
    assert len({received.body for received in receiver.received}) == 1


def test_it_gives_up_after_the_last_attempt(api, services, alice):
    receiver = Receiver(default=500).start()
    try:
        created = submit_with_callback(api, alice, receiver.url())
        _, job = finish_and_deliver(api, alice, created["id"])
    finally:
        receiver.stop()

    assert job.webhook_status == WebhookStatus.FAILED
    assert WebhookDelivery.objects.get(pk=job.webhook_delivery_id).status == WebhookStatus.FAILED
    # Attempts, one per task, until WEBHOOK_RETRY_HORIZON (3 s here) after the first.
    attempts = attempts_of(job)
    assert len(attempts) >= 2
    assert [attempt["status_code"] for attempt in attempts] == [500] * len(attempts)
    assert len(receiver.received) == len(attempts)
    assert _retried_for(job, attempts) >= settings.WEBHOOK_RETRY_HORIZON
    assert job.webhook_next_attempt_at is None


@pytest.mark.parametrize("answer", [400, 404, 410])
def test_it_gives_up_at_once_on_a_4xx(api, services, alice, answer):
    receiver = Receiver(default=answer).start()
    try:
        created = submit_with_callback(api, alice, receiver.url())
        _, job = finish_and_deliver(api, alice, created["id"])
    finally:
        receiver.stop()

    assert job.webhook_status == WebhookStatus.FAILED
    [attempt] = attempts_of(job)
    assert attempt["status_code"] == answer
    assert attempt["error"].startswith(f"HTTP {answer}")
    assert len(receiver.received) == 1


def test_a_receiver_that_is_down_is_retried_then_given_up(api, services, alice):
    receiver = Receiver().start()
    url = receiver.url()
    receiver.stop()  # nothing listens on its port any more

    created = submit_with_callback(api, alice, url)
    _, job = finish_and_deliver(api, alice, created["id"])

    assert job.webhook_status == WebhookStatus.FAILED
    attempts = attempts_of(job)
    assert len(attempts) >= 2
    assert _retried_for(job, attempts) >= settings.WEBHOOK_RETRY_HORIZON
    assert all(attempt["status_code"] is None and attempt["error"] for attempt in attempts)


def test_the_guard_runs_again_at_delivery_time(api, services, alice, receiver):
    created = submit_with_callback(api, alice, receiver.url())
    finish_and_deliver(api, alice, created["id"])
    # As if the host now resolved to a refused address (DNS rebinding): 127.0.0.2 is not
    # allow-listed. The attempt's error names the guard's reason, not a failed connection.
    refused_url = f"http://127.0.0.2:{receiver.port}/hooks/frontservice"
    Job.objects.filter(pk=created["id"]).update(
        callback_url=refused_url,
        webhook_status=WebhookStatus.PENDING,
        webhook_delivery_id=uuid.uuid4(),
        webhook_claimed_at=None,
    )

    enqueue_webhook(uuid.UUID(created["id"]))
    run_tasks()
    job = wait_for_webhook(created["id"], timeout=0)

    assert job.webhook_status == WebhookStatus.FAILED
    [attempt] = attempts_of(job)
    assert attempt["status_code"] is None
    assert "a loopback address" in attempt["error"]
    assert len(receiver.received) == 1  # only the first, allowed delivery


def test_a_second_task_for_the_same_webhook_sends_nothing(api, services, alice, receiver):
    created = submit_with_callback(api, alice, receiver.url())
    _, job = finish_and_deliver(api, alice, created["id"])

    # Delivered twice (a redelivered task): the webhook is no longer pending.
    enqueue_webhook(job.id)
    assert run_tasks() == [f"webhook-{job.id}"]

    assert len(receiver.received) == 1
    assert [attempt["attempt"] for attempt in attempts_of(job)] == [1]
    assert Job.objects.get(pk=job.pk).webhook_status == WebhookStatus.DELIVERED


def _retried_for(job: Job, attempts: list[dict]) -> float:
    """Seconds from the event's first attempt (its delivery record) to when it was given up.

    The give-up is decided after the last attempt ends, so that attempt may itself have
    started a moment before the horizon; the time it was given up may not."""
    delivery = WebhookDelivery.objects.get(pk=job.webhook_delivery_id)
    assert datetime.fromisoformat(attempts[-1]["at"]) <= delivery.updated_at
    return (delivery.updated_at - delivery.created_at).total_seconds()
