"""jobs/api/errors.py: every error the API returns is RFC 9457 problem details, and none gives
anything away. In-process, with DEBUG off as in production.

What gunicorn itself decides (a body without a length on a raw connection) is in
tests/e2e/test_gunicorn.py.
"""

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from rest_framework import exceptions

from jobs.api import errors, idempotency
from jobs.models import IdempotencyKey, Job
from tests.support import problems
from tests.support.inprocess import run_tasks, run_until_settled, submit, wait_for_status
from tests.support.processes import free_port


@pytest.fixture
def closed_url() -> str:
    """An address nothing listens on (free a moment ago): a service that is down."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def secrets(services, closed_url) -> list[str]:
    """What no answer may contain, this setup's internal addresses included."""
    return problems.leaks(services.urls["blob"], services.urls["job"], closed_url)


@pytest.fixture
def assert_problem(secrets):
    """problems.assert_problem, checking that nothing of `secrets` leaks."""

    def check(response, status_code: int, code: str | None = None) -> dict:
        return problems.assert_problem(response, status_code, code, secrets=secrets)

    return check


def _file() -> SimpleUploadedFile:
    return SimpleUploadedFile("in.txt", b"data", content_type="text/plain")


# --- 401 ----------------------------------------------------------------------------------


def test_no_token_is_401(api, assert_problem):
    response = api.get(f"/api/v1/job/{uuid.uuid4()}/status")

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_401(api, assert_problem):
    response = api.post(
        "/api/v1/job",
        data=b"x",
        content_type="application/octet-stream",
        headers={"Authorization": "Bearer not.a.token"},
    )

    assert_problem(response, 401, "invalid_token")


# --- 404 ----------------------------------------------------------------------------------


def test_an_unknown_job_is_404(api, alice, assert_problem):
    response = api.output_of(alice, str(uuid.uuid4()))

    assert_problem(response, 404, "job_not_found")


def test_an_unknown_url_is_404_inside_and_outside_the_api(api, alice, assert_problem):
    for path in ("/api/v1/nothing", "/nothing", "/static/nothing.js", "/api/v1/job/"):
        response = api.get(path, alice)
        assert_problem(response, 404, "not_found")


def test_a_job_that_is_not_done_has_no_output(api, alice, assert_problem):
    # Its orchestration task has not run: the job is not even stored yet.
    job_id = submit(api, alice, b"not yet")["id"]

    response = api.output_of(alice, job_id)

    assert_problem(response, 404, "output_not_ready")


# --- 405, 406 -----------------------------------------------------------------------------


def test_a_method_not_allowed_is_405_with_allow(api, alice, assert_problem):
    response = api.request("delete", "/api/v1/job", alice)

    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_an_accept_the_api_cannot_answer_is_406(api, alice, assert_problem):
    response = api.get(f"/api/v1/job/{uuid.uuid4()}/status", alice, headers={"Accept": "text/html"})

    assert_problem(response, 406, "not_acceptable")


def test_the_schema_answers_its_errors_as_json_too(api, assert_problem):
    # Its renderers are YAML and OpenAPI JSON; an error is still a JSON problem document.
    response = api.get("/api/schema/", headers={"Accept": "text/html"})

    assert_problem(response, 406, "not_acceptable")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/job?format=x",
        "/api/v1/job?format=json",
        "/api/v1/job/2b1d1c8e-5d0a-4c4e-9d7e-2f7f3b0b1a11/status?format=x",
        "/api/v1/job/2b1d1c8e-5d0a-4c4e-9d7e-2f7f3b0b1a11/output?format=x",
        "/api/schema/?format=x",
        "/api/schema/?format=",
        "/api/docs/?format=x",
    ],
)
@pytest.mark.parametrize("with_token", [False, True])
def test_an_unknown_format_is_a_problem_document_with_or_without_a_token(
    api, alice, path, with_token
):
    # DRF raises Django's Http404 for a format it has no renderer for; it has no `.detail`.
    response = api.get(path, alice if with_token else None)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "accept", ["", "*/*;q=x", "application/json;q=0", "text/html, */*;q=0", ";;;", "\x00"]
)
@pytest.mark.parametrize("path", ["/api/v1/job", "/api/schema/", "/healthz"])
def test_any_accept_header_without_a_token_is_never_a_500(api, path, accept):
    response = api.get(path, headers={"Accept": accept})

    assert response.status_code < 500, response.content


# --- 400, 411, 413 on submit -----------------------------------------------------------------


def test_an_empty_body_is_400(api, alice, assert_problem):
    # Content-Length: 0, as an HTTP client sends for an empty body.
    response = api.submit(alice, b"", CONTENT_LENGTH="0")

    assert_problem(response, 400, "empty_input")


def test_a_multipart_body_without_a_boundary_is_400(api, alice, assert_problem):
    response = api.submit(alice, b"--x\r\nnot really multipart", content_type="multipart/form-data")

    assert_problem(response, 400, "malformed_request")


def test_a_multipart_body_with_an_empty_boundary_is_400(api, alice, assert_problem):
    response = api.submit(alice, b"--\r\n", content_type="multipart/form-data; boundary=")

    assert_problem(response, 400, "malformed_request")


def test_a_multipart_body_without_its_parts_is_400(api, alice, assert_problem):
    response = api.submit(
        alice, b"this is not multipart at all", content_type="multipart/form-data; boundary=xyz"
    )

    assert_problem(response, 400, "missing_input")


def test_an_invalid_idempotency_key_is_400(api, alice, assert_problem):
    response = api.submit(alice, b"x", headers={"Idempotency-Key": "has spaces"})

    assert_problem(response, 400, "invalid_idempotency_key")


def test_a_body_without_a_length_is_411_where_the_server_cannot_tell_its_end(alice, assert_problem):
    # Under a WSGI server that does not end the body itself (no wsgi.input_terminated), a
    # request with neither Content-Length nor chunked encoding has a body of unknown end: 411.
    # (gunicorn ends it: there it is an empty body, tests/e2e/test_gunicorn.py.)
    client = Client(HTTP_AUTHORIZATION=alice.headers["Authorization"])
    response = client.generic("POST", "/api/v1/job", content_type="text/plain")

    assert "CONTENT_LENGTH" not in response.wsgi_request.META
    assert_problem(response, 411, "length_required")


def test_a_declared_oversized_body_is_413(api, alice, assert_problem):
    # Only the declared length, no body: reading a byte of it would fail the request (the test
    # client's input refuses reads past what it holds), so the refusal comes before any read.
    response = api.post(
        "/api/v1/job", alice, CONTENT_LENGTH=str(django_settings.MAX_INPUT_BYTES + 1)
    )

    assert_problem(response, 413, "input_too_large")


def test_too_many_form_fields_is_413(api, alice, assert_problem):
    fields = {f"field{i}": "x" for i in range(django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}

    response = api.post("/api/v1/job", alice, data={**fields, "input": _file()}, format="multipart")

    assert_problem(response, 413, "request_too_large")


def test_a_form_field_over_djangos_limit_is_413(api, alice, assert_problem):
    big = "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = api.post(
        "/api/v1/job", alice, data={"comment": big, "input": _file()}, format="multipart"
    )

    assert_problem(response, 413, "request_too_large")


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


def test_a_repeat_in_progress_is_409_and_another_body_is_422(
    api, alice, claimed_key, assert_problem
):
    headers = {"Idempotency-Key": claimed_key}

    same = api.submit(alice, b"first", content_type="text/plain", headers=headers)
    other = api.submit(alice, b"other", content_type="text/plain", headers=headers)

    assert_problem(same, 409, "idempotency_request_in_progress")
    assert_problem(other, 422, "idempotency_key_reused")


# --- 400, 403 from Django itself ------------------------------------------------------------


def test_a_host_that_is_not_allowed_is_400(api, alice, assert_problem):
    response = api.get(
        f"/api/v1/job/{uuid.uuid4()}/status", alice, headers={"Host": "internal.example"}
    )

    body = assert_problem(response, 400, "bad_request")
    assert "internal.example" not in body["detail"]


def test_a_form_without_its_csrf_token_is_403(assert_problem):
    # The test client skips CSRF checks unless told to make them, as a browser's request meets.
    client = Client(enforce_csrf_checks=True)

    response = client.post("/admin/login/", data={"username": "a", "password": "b"})

    assert_problem(response, 403, "csrf_failed")


# --- 5xx ----------------------------------------------------------------------------------


def test_blobservice_down_while_fetching_output_is_502(
    api, alice, settings, closed_url, assert_problem
):
    job_id = submit(api, alice, b"to be fetched")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    # BlobService stops answering: nothing listens on its address any more.
    settings.BLOBSERVICE_URL = closed_url

    response = api.output_of(alice, job_id)

    assert_problem(response, 502, "downstream_unavailable")


def test_a_failed_job_names_no_internal_host(api, alice, settings, closed_url, secrets):
    # BlobService down while the job waits for its next attempt, then for longer than the
    # horizon (DOWNSTREAM_RETRY_HORIZON): STORED_ERROR with a connection error whose text names
    # BlobService's host and port. Neither document shows it.
    settings.BLOBSERVICE_URL = closed_url
    job_id = submit(api, alice, b"never stored")["id"]
    run_tasks()
    waiting = api.status_of(alice, job_id)
    assert waiting.json()["last_error"]["message"] == "ConnectionError talking to blobservice"
    assert not any(secret in waiting.content.decode() for secret in secrets)
    run_until_settled(job_id)
    job = Job.objects.get(pk=job_id)
    assert job.status == "STORED_ERROR"
    netloc = closed_url.removeprefix("http://")
    assert netloc in job.error["message"].replace("', port=", ":")

    response = api.status_of(alice, job_id)

    assert response.status_code == 200
    error = response.json()["error"]
    assert error["service"] == "blobservice" and error["status_code"] is None
    assert error["message"] == "ConnectionError talking to blobservice"
    for secret in secrets:
        assert secret not in response.content.decode(), secret


def test_an_unexpected_error_is_a_bare_500():
    response = errors.exception_handler(
        RuntimeError(f"boom in {django_settings.BASE_DIR} at {django_settings.MONGODB_URI}"), {}
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
