"""Every error the API returns is RFC 9457 problem details, and none gives anything away.

Against the running stack, where DEBUG is off as in production.
"""

import hashlib
import http.client
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework import exceptions

from jobs.api import errors, idempotency
from jobs.models import IdempotencyKey
from tests.support.api import submit, wait_for_status, wait_for_stored_status


def leaks(stack) -> list[str]:
    """What no response may contain: tracebacks, source paths, internal addresses."""
    mongo = urlsplit(settings.MONGODB_URI)
    return [
        "Traceback",
        'File "',
        "/work/",
        str(settings.BASE_DIR),
        urlsplit(stack.urls["blob"]).netloc,
        urlsplit(stack.urls["job"]).netloc,
        settings.MONGODB_URI,
        mongo.netloc,
    ]


@dataclass
class RawAnswer:
    status_code: int
    headers: dict[str, str]
    text: str


def assert_problem(stack, response, status_code: int, code: str | None = None) -> dict:
    """A problem document with this status (and code), free of anything internal."""
    text = response.text if hasattr(response, "text") else response.content.decode()
    assert response.status_code == status_code, text
    assert response.headers["Content-Type"] == "application/problem+json", text
    for secret in leaks(stack):
        assert secret not in text, (secret, text)
    body = json.loads(text)
    assert set(body) == {"type", "title", "status", "detail", "code"}, body
    assert body["status"] == status_code
    assert body["type"] == f"urn:frontservice:problem:{body['code']}"
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


def raw_request(stack, method: str, path: str, headers: dict[str, str]) -> RawAnswer:
    """One request exactly as written: no body, and no Content-Length unless given."""
    url = urlsplit(stack.api)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawAnswer(response.status, dict(response.getheaders()), response.read().decode())
    finally:
        connection.close()


# --- 401 ----------------------------------------------------------------------------------


def test_no_token_is_401(stack):
    response = requests.get(f"{stack.api}/api/v1/job/{uuid.uuid4()}/status", timeout=30)

    assert_problem(stack, response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_401(stack):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"x",
        headers={"Authorization": "Bearer not.a.token"},
        timeout=30,
    )

    assert_problem(stack, response, 401, "invalid_token")


# --- 404 ----------------------------------------------------------------------------------


def test_an_unknown_job_is_404(stack, alice):
    response = requests.get(
        f"{stack.api}/api/v1/job/{uuid.uuid4()}/output", headers=alice.headers, timeout=30
    )

    assert_problem(stack, response, 404, "job_not_found")


def test_an_unknown_url_is_404_inside_and_outside_the_api(stack, alice):
    for path in ("/api/v1/nothing", "/nothing", "/static/nothing.js", "/api/v1/job/"):
        response = requests.get(f"{stack.api}{path}", headers=alice.headers, timeout=30)
        assert_problem(stack, response, 404, "not_found")


def test_a_job_that_is_not_done_has_no_output(stack, alice):
    # JobService takes EXECUTION_DELAY to run it, so the job is not completed yet.
    job_id = submit(stack, alice, b"not yet")["id"]

    response = requests.get(
        f"{stack.api}/api/v1/job/{job_id}/output", headers=alice.headers, timeout=30
    )

    assert_problem(stack, response, 404, "output_not_ready")


# --- 405, 406 -----------------------------------------------------------------------------


def test_a_method_not_allowed_is_405_with_allow(stack, alice):
    response = requests.delete(f"{stack.api}/api/v1/job", headers=alice.headers, timeout=30)

    assert_problem(stack, response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_an_accept_the_api_cannot_answer_is_406(stack, alice):
    response = requests.get(
        f"{stack.api}/api/v1/job/{uuid.uuid4()}/status",
        headers={**alice.headers, "Accept": "text/html"},
        timeout=30,
    )

    assert_problem(stack, response, 406, "not_acceptable")


def test_the_schema_answers_its_errors_as_json_too(stack):
    # Its renderers are YAML and OpenAPI JSON; an error is still a JSON problem document.
    response = requests.get(f"{stack.api}/api/schema/", headers={"Accept": "text/html"}, timeout=30)

    assert_problem(stack, response, 406, "not_acceptable")


# --- 400, 411, 413 on submit -----------------------------------------------------------------


def test_an_empty_body_is_400(stack, alice):
    response = requests.post(f"{stack.api}/api/v1/job", data=b"", headers=alice.headers, timeout=30)

    assert_problem(stack, response, 400, "empty_input")


def test_a_multipart_body_without_a_boundary_is_400(stack, alice):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"--x\r\nnot really multipart",
        headers={**alice.headers, "Content-Type": "multipart/form-data"},
        timeout=30,
    )

    assert_problem(stack, response, 400, "malformed_request")


def test_a_multipart_body_with_an_empty_boundary_is_400(stack, alice):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"--\r\n",
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary="},
        timeout=30,
    )

    assert_problem(stack, response, 400, "malformed_request")


def test_a_multipart_body_without_its_parts_is_400(stack, alice):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"this is not multipart at all",
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=xyz"},
        timeout=30,
    )

    assert_problem(stack, response, 400, "missing_input")


def test_an_invalid_idempotency_key_is_400(stack, alice):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"x",
        headers={**alice.headers, "Idempotency-Key": "has spaces"},
        timeout=30,
    )

    assert_problem(stack, response, 400, "invalid_idempotency_key")


def test_a_body_without_a_length_is_411_where_the_server_cannot_tell_its_end(stack, alice):
    # gunicorn ends every body for us (wsgi.input_terminated): there, a request with neither
    # Content-Length nor chunked encoding has an empty body (RFC 9112 section 6.3)...
    response = raw_request(stack, "POST", "/api/v1/job", alice.headers)
    assert_problem(stack, response, 400, "empty_input")

    # ...while under a WSGI server that does not, the body's end is unknown: 411.
    client = Client(HTTP_AUTHORIZATION=alice.headers["Authorization"])
    response = client.generic("POST", "/api/v1/job", content_type="text/plain")
    assert_problem(stack, response, 411, "length_required")


def test_a_declared_oversized_body_is_413(stack, alice):
    headers = {**alice.headers, "Content-Length": str(settings.MAX_INPUT_BYTES + 1)}

    response = raw_request(stack, "POST", "/api/v1/job", headers)

    assert_problem(stack, response, 413, "input_too_large")


def test_too_many_form_fields_is_413(stack, alice):
    fields = {f"field{i}": "x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}

    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=fields,
        files={"input": ("in.txt", b"data", "text/plain")},
        headers=alice.headers,
        timeout=30,
    )

    assert_problem(stack, response, 413, "request_too_large")


def test_a_form_field_over_djangos_limit_is_413(stack, alice):
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = requests.post(
        f"{stack.api}/api/v1/job",
        data={"comment": big},
        files={"input": ("in.txt", b"data", "text/plain")},
        headers=alice.headers,
        timeout=30,
    )

    assert_problem(stack, response, 413, "request_too_large")


# --- 409, 422 -----------------------------------------------------------------------------


@pytest.fixture
def claimed_key(alice) -> str:
    """A key alice's earlier request claimed for b"first" and has not answered yet."""
    IdempotencyKey.objects.create(
        tenant_id=alice.tenant_id,
        sub=alice.sub,
        key="claimed",
        request_hash=idempotency.fingerprint(
            content_type="text/plain",
            body_sha256=hashlib.sha256(b"first").hexdigest(),
        ),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    return "claimed"


def test_a_repeat_in_progress_is_409_and_another_body_is_422(stack, alice, claimed_key):
    headers = {**alice.headers, "Content-Type": "text/plain", "Idempotency-Key": claimed_key}

    same = requests.post(f"{stack.api}/api/v1/job", data=b"first", headers=headers, timeout=30)
    other = requests.post(f"{stack.api}/api/v1/job", data=b"other", headers=headers, timeout=30)

    assert_problem(stack, same, 409, "idempotency_request_in_progress")
    assert_problem(stack, other, 422, "idempotency_key_reused")


# --- 400, 403 from Django itself ------------------------------------------------------------


def test_a_host_that_is_not_allowed_is_400(stack, alice):
    response = requests.get(
        f"{stack.api}/api/v1/job/{uuid.uuid4()}/status",
        headers={**alice.headers, "Host": "internal.example"},
        timeout=30,
    )

    body = assert_problem(stack, response, 400, "bad_request")
    assert "internal.example" not in body["detail"]


def test_a_form_without_its_csrf_token_is_403(stack):
    response = requests.post(
        f"{stack.api}/admin/login/", data={"username": "a", "password": "b"}, timeout=30
    )

    assert_problem(stack, response, 403, "csrf_failed")


# --- 5xx ----------------------------------------------------------------------------------


def test_blobservice_down_while_fetching_output_is_502(quiet_stack, alice):
    stack = quiet_stack
    job_id = submit(stack, alice, b"to be fetched")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    stack.stop("blob")
    try:
        response = requests.get(
            f"{stack.api}/api/v1/job/{job_id}/output", headers=alice.headers, timeout=30
        )
    finally:
        stack.start("blob")

    assert_problem(stack, response, 502, "downstream_unavailable")


def test_a_failed_job_names_no_internal_host(quiet_stack, alice):
    # BlobService down for longer than the retries (DOWNSTREAM_RETRY_DEADLINE): STORED_ERROR
    # with a connection error whose text names BlobService's host and port.
    stack = quiet_stack
    stack.stop("blob")
    try:
        job_id = submit(stack, alice, b"never stored")["id"]
        job = wait_for_stored_status(job_id, {"STORED_ERROR"}, timeout=30)
    finally:
        stack.start("blob")
    assert urlsplit(stack.urls["blob"]).netloc in job.error["message"].replace("', port=", ":")

    response = requests.get(
        f"{stack.api}/api/v1/job/{job_id}/status", headers=alice.headers, timeout=30
    )

    assert response.status_code == 200
    error = response.json()["error"]
    assert error["service"] == "blobservice" and error["status_code"] is None
    assert error["message"] == "ConnectionError talking to blobservice"
    for secret in leaks(stack):
        assert secret not in response.text


def test_an_unexpected_error_is_a_bare_500():
    response = errors.exception_handler(
        RuntimeError(f"boom in {settings.BASE_DIR} at {settings.MONGODB_URI}"), {}
    )

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.content == (
        b'{"type": "urn:frontservice:problem:internal_error", "title": "Internal Server Error", '
        b'"status": 500, "detail": "Internal server error.", "code": "internal_error"}'
    )


def test_django_level_handlers_answer_problem_documents():
    for response, status_code, code in [
        (errors.handler404(None), 404, "not_found"),
        (errors.handler500(None), 500, "internal_error"),
        (errors.handler403(None), 403, "permission_denied"),
        (errors.csrf_failure(None, reason="CSRF cookie not set."), 403, "csrf_failed"),
    ]:
        assert response.status_code == status_code
        assert response["Content-Type"] == "application/problem+json"
        assert f'"code": "{code}"'.encode() in response.content


# --- 429 ----------------------------------------------------------------------------------


def test_throttled_is_429_with_retry_after():
    response = errors.exception_handler(exceptions.Throttled(wait=7), {})

    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "7"
    assert b'"code": "rate_limited"' in response.content
