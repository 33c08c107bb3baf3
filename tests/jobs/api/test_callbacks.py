"""The `callback_url` of POST /api/v1/job (jobs/api/callbacks.py): taken from the query or the
multipart form, refused by the SSRF guard before anything is stored, part of an idempotent
request. In-process through DRF's test client; the deliveries are tests/webhooks'.
"""

import json
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, WebhookStatus
from tests.support.inprocess import wait_for_status
from tests.support.inprocess_webhooks import (
    assert_problem,
    finish_and_deliver,
    job_path,
    post_job,
)
from tests.support.webhooks import Receiver


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


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
def test_it_refuses_callback_urls_the_guard_refuses(api, alice, url):
    response = post_job(api, alice, callback_url=url)

    assert_problem(response, 400, "invalid_callback_url")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_it_refuses_a_callback_given_twice(api, alice, receiver):
    query = urlencode([("callback_url", receiver.url()), ("callback_url", receiver.url("/other"))])

    response = api.post(
        f"/api/v1/job?{query}", alice, data=b"x", content_type="application/octet-stream"
    )

    assert_problem(response, 400, "invalid_callback_url")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_a_refused_query_callback_is_answered_before_the_body_is_read(api, alice):
    # The request announces more than MAX_INPUT_BYTES and carries one byte: the answer comes
    # from the query alone. Otherwise it would be 413 input_too_large (the length is checked
    # before the body is read), and reading the body would fail the test client's stream.
    response = api.post(
        job_path("http://10.0.0.1/hook"),
        alice,
        data=b"x",
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(settings.MAX_INPUT_BYTES + 1),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_callback_url"


# --- multipart -----------------------------------------------------------------------------


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def _multipart(api, owner, *, query: str | None, form: str):
    return api.post(
        job_path(query),
        owner,
        data={
            "input": SimpleUploadedFile("in.txt", b"multipart webhook", "text/plain"),
            "callback_url": form,
        },
        format="multipart",
    )


def test_a_multipart_request_may_send_the_callback_as_a_form_field(api, services, alice, receiver):
    response = _multipart(api, alice, query=None, form=receiver.url())
    assert response.status_code == 202, response.content

    _, job = finish_and_deliver(api, alice, response.json()["id"])

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
    api, alice, receiver, query, form
):
    urls = {"RECEIVER": receiver.url(), "RECEIVER_OTHER_PATH": receiver.url("/other")}
    before = set(_staging_tmp_files())

    response = _multipart(api, alice, query=urls.get(query), form=urls.get(form, form))

    assert_problem(response, 400, "invalid_callback_url")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert set(_staging_tmp_files()) <= before


# --- Idempotency-Key -----------------------------------------------------------------------


def test_the_callback_is_part_of_an_idempotent_request(api, services, alice, receiver):
    key = {"Idempotency-Key": f"hooked-{uuid.uuid4()}"}
    first = post_job(api, alice, b"same input", callback_url=receiver.url(), headers=key)
    repeat = post_job(api, alice, b"same input", callback_url=receiver.url(), headers=key)
    other_callback = post_job(
        api, alice, b"same input", callback_url=receiver.url("/other"), headers=key
    )
    no_callback = post_job(api, alice, b"same input", headers=key)

    assert first.status_code == repeat.status_code == 202, first.content
    assert repeat.json() == first.json()
    assert_problem(other_callback, 422, "idempotency_key_reused")
    assert_problem(no_callback, 422, "idempotency_key_reused")
    [job] = Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub)
    assert job.callback_url == receiver.url()
    finish_and_deliver(api, alice, str(job.id))
    assert len(receiver.received) == 1


def test_without_a_callback_a_key_keeps_matching_its_repeats(api, services, alice):
    key = {"Idempotency-Key": f"plain-{uuid.uuid4()}"}
    first = post_job(api, alice, b"same input", headers=key)
    repeat = post_job(api, alice, b"same input", headers=key)

    assert first.status_code == repeat.status_code == 202, first.content
    assert repeat.json()["id"] == first.json()["id"]
    wait_for_status(api, alice, first.json()["id"], {"EXECUTION_COMPLETED"})
