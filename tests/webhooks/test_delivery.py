"""Completion webhooks: `callback_url` on POST /api/v1/job, and the signed job document POSTed
to it when the job is final, retried, recorded, behind the SSRF guard.

The receiver is a real HTTP server on 127.0.0.1 that each test starts on a free port; the test
stack allow-lists 127.0.0.1/32 (tests/embedded_database.py), and nothing else that is not public.
"""

import http.client
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from jobs.models import Job, WebhookStatus
from tests.support.api import Owner, status_of, wait_for_status
from tests.support.webhooks import Receiver, verifies, wait_for_webhook
from webhooks.models import WebhookDelivery
from webhooks.reconcile import webhooks_reconcile

FINISHED = {"EXECUTION_COMPLETED", "EXECUTION_ERROR", "STORED_ERROR", "SUBMITTED_ERROR"}
OTHER_SECRET = "not-the-secret"


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def post_job(
    stack, owner: Owner, data: bytes = b"hello webhooks", *, callback_url=None, **headers
) -> requests.Response:
    params = {"callback_url": callback_url} if callback_url is not None else None
    return requests.post(
        f"{stack.api}/api/v1/job",
        params=params,
        data=data,
        headers={**owner.headers, "Content-Type": "text/plain", **headers},
        timeout=30,
    )


def submit_with_callback(stack, owner: Owner, url: str, data: bytes = b"hello webhooks") -> dict:
    response = post_job(stack, owner, data, callback_url=url)
    assert response.status_code == 202, response.text
    return response.json()


def assert_problem(response: requests.Response, status_code: int, code: str) -> None:
    assert response.status_code == status_code, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def attempts_of(job: Job) -> list[dict]:
    return WebhookDelivery.objects.get(pk=job.webhook_delivery_id).attempts


# --- delivery ------------------------------------------------------------------------------


def test_it_posts_the_signed_job_document_when_the_job_completes(stack, alice, receiver):
    created = submit_with_callback(stack, alice, receiver.url())

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


def test_it_posts_the_document_of_a_failed_job(stack, alice, receiver):
    created = submit_with_callback(stack, alice, receiver.url(), data=b"#fail this one")

    final = wait_for_status(stack, alice, created["id"], FINISHED)
    job = wait_for_webhook(created["id"])

    assert final["status"] == "EXECUTION_ERROR"
    assert job.webhook_status == WebhookStatus.DELIVERED
    [received] = receiver.received
    document = json.loads(received.body)
    assert document["status"] == "EXECUTION_ERROR"
    assert document["error"]["service"] == "jobservice"
    assert verifies(received, settings.WEBHOOK_SECRET)


def test_a_tenant_with_its_own_secret_gets_deliveries_signed_with_it(stack, receiver):
    owner = Owner(tenant_id="webhook-tenant-with-own-secret", sub=f"carol-{uuid.uuid4().hex[:8]}")
    created = submit_with_callback(stack, owner, receiver.url())

    wait_for_status(stack, owner, created["id"], FINISHED)
    wait_for_webhook(created["id"])

    [received] = receiver.received
    assert verifies(received, settings.WEBHOOK_TENANT_SECRETS[owner.tenant_id])
    assert not verifies(received, settings.WEBHOOK_SECRET)


def test_a_job_without_a_callback_sends_nothing(stack, alice, receiver):
    response = post_job(stack, alice)
    assert response.status_code == 202, response.text

    wait_for_status(stack, alice, response.json()["id"], FINISHED)

    assert response.json()["callback_url"] is None
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.callback_url, job.webhook_status, job.webhook_delivery_id) == ("", "", None)
    assert not WebhookDelivery.objects.filter(job=job).exists()


def test_it_retries_until_the_receiver_accepts(stack, alice):
    receiver = Receiver(answers=[500, 429, 503]).start()
    try:
        created = submit_with_callback(stack, alice, receiver.url())
        wait_for_status(stack, alice, created["id"], FINISHED)
        job = wait_for_webhook(created["id"])
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


def test_it_gives_up_after_the_last_attempt(stack, alice):
    receiver = Receiver(default=500).start()
    try:
        created = submit_with_callback(stack, alice, receiver.url())
        wait_for_status(stack, alice, created["id"], FINISHED)
        job = wait_for_webhook(created["id"])
    finally:
        receiver.stop()

    assert job.webhook_status == WebhookStatus.FAILED
    assert WebhookDelivery.objects.get(pk=job.webhook_delivery_id).status == WebhookStatus.FAILED
    attempts = [attempt["status_code"] for attempt in attempts_of(job)]
    assert attempts == [500] * settings.WEBHOOK_RETRY_ATTEMPTS
    assert len(receiver.received) == settings.WEBHOOK_RETRY_ATTEMPTS


@pytest.mark.parametrize("answer", [400, 404, 410])
def test_it_gives_up_at_once_on_a_4xx(stack, alice, answer):
    receiver = Receiver(default=answer).start()
    try:
        created = submit_with_callback(stack, alice, receiver.url())
        wait_for_status(stack, alice, created["id"], FINISHED)
        job = wait_for_webhook(created["id"])
    finally:
        receiver.stop()

    assert job.webhook_status == WebhookStatus.FAILED
    [attempt] = attempts_of(job)
    assert attempt["status_code"] == answer
    assert attempt["error"].startswith(f"HTTP {answer}")
    assert len(receiver.received) == 1


def test_a_receiver_that_is_down_is_retried_then_given_up(stack, alice):
    receiver = Receiver().start()
    url = receiver.url()
    receiver.stop()  # nothing listens on its port any more

    created = submit_with_callback(stack, alice, url)
    wait_for_status(stack, alice, created["id"], FINISHED)
    job = wait_for_webhook(created["id"])

    assert job.webhook_status == WebhookStatus.FAILED
    attempts = attempts_of(job)
    assert len(attempts) == settings.WEBHOOK_RETRY_ATTEMPTS
    assert all(attempt["status_code"] is None and attempt["error"] for attempt in attempts)


# --- the reconciler ------------------------------------------------------------------------


def test_the_reconciler_sends_a_webhook_whose_task_was_lost(stack, alice, receiver):
    created = submit_with_callback(stack, alice, receiver.url())
    wait_for_status(stack, alice, created["id"], FINISHED)
    first = wait_for_webhook(created["id"])
    # As if the job had just become final and its task were lost: pending, claimed by nobody.
    lost = uuid.uuid4()
    Job.objects.filter(pk=first.pk).update(
        webhook_status=WebhookStatus.PENDING, webhook_delivery_id=lost, webhook_claimed_at=None
    )

    enqueued = webhooks_reconcile(
        webhook_after=timedelta(seconds=1), now=timezone.now() + timedelta(seconds=2)
    )
    job = wait_for_webhook(created["id"])

    assert created["id"] in enqueued
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert [r.headers["X-FrontService-Delivery"] for r in receiver.received] == [
        str(first.webhook_delivery_id),
        str(lost),
    ]


def test_the_reconciler_leaves_a_webhook_being_sent_and_takes_over_a_dead_claim(
    stack, alice, receiver
):
    created = submit_with_callback(stack, alice, receiver.url())
    wait_for_status(stack, alice, created["id"], FINISHED)
    first = wait_for_webhook(created["id"])
    now = timezone.now()
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
    job = wait_for_webhook(created["id"])

    assert created["id"] in enqueued
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert [attempt["attempt"] for attempt in attempts_of(job)] == [1, 2]
    assert [r.headers["X-FrontService-Delivery"] for r in receiver.received] == [
        str(first.webhook_delivery_id)
    ] * 2


def test_the_guard_runs_again_at_delivery_time(stack, alice, receiver):
    created = submit_with_callback(stack, alice, receiver.url())
    wait_for_status(stack, alice, created["id"], FINISHED)
    wait_for_webhook(created["id"])
    # As if the host now resolved to a refused address (DNS rebinding): 127.0.0.2 is not
    # allow-listed. The attempt's error names the guard's reason, not a failed connection.
    refused_url = f"http://127.0.0.2:{receiver.port}/hooks/frontservice"
    Job.objects.filter(pk=created["id"]).update(
        callback_url=refused_url,
        webhook_status=WebhookStatus.PENDING,
        webhook_delivery_id=uuid.uuid4(),
        webhook_claimed_at=None,
    )

    webhooks_reconcile(
        webhook_after=timedelta(seconds=1), now=timezone.now() + timedelta(seconds=2)
    )
    job = wait_for_webhook(created["id"])

    assert job.webhook_status == WebhookStatus.FAILED
    [attempt] = attempts_of(job)
    assert attempt["status_code"] is None
    assert "a loopback address" in attempt["error"]
    assert len(receiver.received) == 1  # only the first, allowed delivery


# --- refusals at POST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:8080/hook",  # loopback outside the allow-list
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.2]/hook",
        "http://2130706434/hook",  # 127.0.0.2 in decimal
        "http://0.0.0.0/hook",
        "http://10.0.0.1/hook",
        "http://192.168.0.10/hook",
        "http://100.64.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fe80::1]/hook",
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "http://user:secret@127.0.0.1:8080/hook",
        "http:///hook",
        "not a url",
        "",
        "http://does-not-exist.invalid/hook",
        "http://127.0.0.1/" + "a" * 2048,
    ],
)
def test_it_refuses_callback_urls_the_guard_refuses(stack, alice, url):
    response = post_job(stack, alice, callback_url=url)

    assert_problem(response, 400, "invalid_callback_url")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_it_refuses_a_callback_given_twice(stack, alice, receiver):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        params=[("callback_url", receiver.url()), ("callback_url", receiver.url("/other"))],
        data=b"x",
        headers=alice.headers,
        timeout=30,
    )

    assert_problem(response, 400, "invalid_callback_url")


def test_a_refused_query_callback_is_answered_before_the_body_is_read(stack, alice):
    # The request announces more than MAX_INPUT_BYTES and sends none of it: the answer comes
    # from the query alone (otherwise: 413 input_too_large, or a wait for the body).
    api = urlsplit(stack.api)
    connection = http.client.HTTPConnection(api.hostname, api.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/v1/job?callback_url=http://10.0.0.1/hook")
        connection.putheader("Authorization", alice.headers["Authorization"])
        connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader("Content-Length", str(settings.MAX_INPUT_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 400
    assert body["code"] == "invalid_callback_url"


# --- multipart -----------------------------------------------------------------------------


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def test_a_multipart_request_may_send_the_callback_as_a_form_field(stack, alice, receiver):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        files={"input": ("in.txt", b"multipart webhook", "text/plain")},
        data={"callback_url": receiver.url()},
        headers=alice.headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text

    wait_for_status(stack, alice, response.json()["id"], FINISHED)
    job = wait_for_webhook(response.json()["id"])

    assert response.json()["callback_url"] == receiver.url()
    assert job.webhook_status == WebhookStatus.DELIVERED
    [received] = receiver.received
    assert json.loads(received.body)["id"] == response.json()["id"]


@pytest.mark.parametrize(
    ("query", "form"),
    [
        (None, "http://169.254.169.254/latest/meta-data/"),
        ("RECEIVER", "http://10.0.0.1/hook"),
        ("RECEIVER", "RECEIVER_OTHER_PATH"),
    ],
)
def test_a_refused_or_conflicting_form_callback_leaves_nothing_staged(
    stack, alice, receiver, query, form
):
    urls = {"RECEIVER": receiver.url(), "RECEIVER_OTHER_PATH": receiver.url("/other")}
    before = set(_staging_tmp_files())

    response = requests.post(
        f"{stack.api}/api/v1/job",
        params={"callback_url": urls[query]} if query else None,
        files={"input": ("in.txt", b"multipart webhook", "text/plain")},
        data={"callback_url": urls.get(form, form)},
        headers=alice.headers,
        timeout=30,
    )

    assert_problem(response, 400, "invalid_callback_url")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert set(_staging_tmp_files()) <= before


# --- Idempotency-Key -----------------------------------------------------------------------


def test_the_callback_is_part_of_an_idempotent_request(stack, alice, receiver):
    key = {"Idempotency-Key": f"hooked-{uuid.uuid4()}"}
    first = post_job(stack, alice, b"same input", callback_url=receiver.url(), **key)
    repeat = post_job(stack, alice, b"same input", callback_url=receiver.url(), **key)
    other_callback = post_job(
        stack, alice, b"same input", callback_url=receiver.url("/other"), **key
    )
    no_callback = post_job(stack, alice, b"same input", **key)

    assert first.status_code == repeat.status_code == 202, first.text
    assert repeat.json() == first.json()
    assert_problem(other_callback, 422, "idempotency_key_reused")
    assert_problem(no_callback, 422, "idempotency_key_reused")
    [job] = Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub)
    assert job.callback_url == receiver.url()
    wait_for_status(stack, alice, str(job.id), FINISHED)
    wait_for_webhook(str(job.id))
    assert len(receiver.received) == 1


def test_without_a_callback_a_key_keeps_matching_its_repeats(stack, alice):
    key = {"Idempotency-Key": f"plain-{uuid.uuid4()}"}
    first = post_job(stack, alice, b"same input", **key)
    repeat = post_job(stack, alice, b"same input", **key)

    assert first.status_code == repeat.status_code == 202, first.text
    assert repeat.json()["id"] == first.json()["id"]


# --- operators -----------------------------------------------------------------------------


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


def test_an_operator_sends_a_failed_webhook_again_as_a_new_event(stack, alice):
    # The receiver refuses the first event (a 410 gives up at once), then accepts.
    receiver = Receiver(answers=[410]).start()
    try:
        created = submit_with_callback(stack, alice, receiver.url())
        final = wait_for_status(stack, alice, created["id"], FINISHED)
        failed = wait_for_webhook(created["id"])
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
        job = wait_for_webhook(created["id"])
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
    assert status_of(stack, alice, created["id"]).json()["finished_at"] == final["finished_at"]
