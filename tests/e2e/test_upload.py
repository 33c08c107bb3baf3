"""Uploads as gunicorn reads them off the socket: a chunked body, headers past its limits, and
an answer sent before any of the body. The rest of POST /api/v1/job is tested in-process in
tests/jobs/api/test_submit.py."""

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings

from jobs.models import Job


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def test_it_accepts_a_chunked_body(stack, alice):
    def chunks():
        yield b"hello "
        yield b"chunked world"

    response = requests.post(
        f"{stack.api}/api/v1/job", data=chunks(), headers=alice.headers, timeout=30
    )

    assert response.status_code == 202, response.text
    assert Job.objects.get(pk=response.json()["id"]).input_size == len(b"hello chunked world")


def test_it_refuses_a_declared_oversized_body_before_reading_it(stack, alice):
    url = urlsplit(stack.api)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.putrequest("POST", "/api/v1/job")
    connection.putheader("Authorization", alice.headers["Authorization"])
    connection.putheader("Content-Length", str(settings.MAX_INPUT_BYTES + 1))
    connection.endheaders()
    # Not a byte of the body is sent: the answer must come anyway.
    response = connection.getresponse()

    assert response.status == 413
    assert b'"input_too_large"' in response.read()
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_huge_headers_are_refused_before_anything_is_stored(stack, alice):
    jobs_before = Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).count()

    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"input",
        headers={**alice.headers, "X-Padding": "x" * 64 * 1024},
        timeout=30,
    )

    # gunicorn refuses it itself (limit_request_field_size), before Django sees the request.
    assert response.status_code in (400, 431)
    assert Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).count() == jobs_before
    assert _staging_tmp_files() == []
