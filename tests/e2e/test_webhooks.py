"""One completion webhook through the running stack: POSTed with a callback to gunicorn, the
job run by a django-q2 cluster, its signed document delivered by the cluster's worker to a
real receiver on loopback. The rules of delivery are tested in-process in tests/webhooks.
"""

import json
import uuid

import pytest
import requests
from django.conf import settings

from jobs.models import WebhookStatus
from tests.support.api import Owner, status_of, wait_for_status
from tests.support.stack import REPO
from tests.support.webhooks import Receiver, verifies, wait_for_webhook
from webhooks.models import WebhookDelivery

# What the broker does here (delivery, redelivery, acknowledgement) differs between MongoDB
# and Redis: this file runs with each (make test-e2e, make test-e2e-redis).
pytestmark = pytest.mark.brokers

FINISHED = {"EXECUTION_COMPLETED", "EXECUTION_ERROR", "STORED_ERROR", "SUBMITTED_ERROR"}


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def test_it_posts_the_signed_job_document_when_the_job_completes(stack, alice, receiver):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        params={"callback_url": receiver.url()},
        data=b"hello webhooks",
        headers={**alice.headers, "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    created = response.json()

    assert created["callback_url"] == receiver.url()
    final = wait_for_status(stack, alice, created["id"], FINISHED)
    job = wait_for_webhook(created["id"])

    assert final["status"] == "EXECUTION_COMPLETED"
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert (job.callback_url, job.base_url) == (receiver.url(), stack.api)
    [received] = receiver.received
    assert received.path == "/hooks/frontservice"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-FrontService-Event"] == "job.finished"
    assert received.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)
    assert received.headers["Host"] == f"127.0.0.1:{receiver.port}"
    # The same document, absolute links included, that the status endpoint answers.
    assert json.loads(received.body) == status_of(stack, alice, created["id"]).json()
    assert json.loads(received.body)["links"]["output"].startswith(f"{stack.api}/api/v1/job/")
    assert verifies(received, settings.WEBHOOK_SECRET)
    delivery = WebhookDelivery.objects.get(pk=job.webhook_delivery_id)
    assert (delivery.status, delivery.job_status) == (
        WebhookStatus.DELIVERED,
        "EXECUTION_COMPLETED",
    )
    [attempt] = delivery.attempts
    assert (attempt["attempt"], attempt["status_code"], attempt["error"]) == (1, 200, None)
    assert attempt["address"] == "127.0.0.1"


def _documented_verify():
    """The `verify` of docs/api.md's receiver snippet, as a receiver would paste it."""
    text = (REPO / "docs" / "api.md").read_text()
    section = text[text.index("Verify before trusting a delivery") :]
    start = section.index("```python\n") + len("```python\n")
    code = section[start : section.index("\n```", start)]
    namespace: dict = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)
    return namespace["verify"]


def _deliver(stack, owner, receiver):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        params={"callback_url": receiver.url()},
        data=b"signed for this tenant",
        headers=owner.headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    wait_for_status(stack, owner, response.json()["id"], FINISHED)
    job = wait_for_webhook(response.json()["id"])
    assert job.webhook_status == WebhookStatus.DELIVERED
    [received] = receiver.received
    return received


def test_the_documented_snippet_verifies_a_real_delivery_and_refuses_a_replay(stack, receiver):
    owner = Owner(tenant_id="webhook-tenant-with-own-secret", sub=f"dana-{uuid.uuid4().hex[:8]}")
    [secret] = settings.WEBHOOK_TENANT_SECRETS[owner.tenant_id]
    verify = _documented_verify()

    received = _deliver(stack, owner, receiver)

    assert received.headers["X-FrontService-Signature"].startswith("v2=")
    assert verify(secret, received.headers, received.body)
    # The shared development secret does not verify a tenant with its own.
    assert not verify(settings.WEBHOOK_SECRET, received.headers, received.body)
    # Captured and replayed under a new delivery id (to pass the receiver's dedupe): refused.
    replayed = {**received.headers, "X-FrontService-Delivery": str(uuid.uuid4())}
    assert not verify(secret, replayed, received.body)
    assert not verify(secret, received.headers, received.body.replace(b"COMPLETED", b"ERROR"))


def test_while_a_secret_is_rotated_a_delivery_verifies_with_either(stack, receiver):
    owner = Owner(tenant_id="webhook-tenant-rotating", sub=f"erin-{uuid.uuid4().hex[:8]}")
    verify = _documented_verify()

    received = _deliver(stack, owner, receiver)

    assert received.headers["X-FrontService-Signature"].count("v2=") == 2
    assert verify("new-secret-for-tests", received.headers, received.body)
    assert verify("old-secret-for-tests", received.headers, received.body)
    assert not verify("tenant-secret-for-tests", received.headers, received.body)
