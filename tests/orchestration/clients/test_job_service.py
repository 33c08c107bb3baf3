"""job_service client, mocked at the HTTP boundary."""

import json

import pytest
import requests
import responses

from frontservice.downstream import DownstreamError
from orchestration.clients.job_service import (
    RemoteJob,
    RemoteJobNotFound,
    cancel_job,
    get_job,
    submit_job,
)

JOB_URL = "http://jobservice.test/api/jobs/job-1"


@pytest.fixture(autouse=True)
def downstream_settings(settings):
    # A base URL with a path prefix and a trailing slash, as a reverse proxy would expose it.
    settings.JOBSERVICE_URL = "http://jobservice.test/api/"
    settings.DOWNSTREAM_CONNECT_TIMEOUT = 0.5
    settings.DOWNSTREAM_READ_TIMEOUT = 4.0


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def document(status="QUEUED", error=None, **extra):
    return {"id": "job-1", "blob_id": "blob-1", "status": status, "error": error, **extra}


# The three calls with the HTTP method each uses, for behaviour they all share.
CALLS = [
    pytest.param("PUT", lambda: submit_job("job-1", blob_id="blob-1"), id="submit_job"),
    pytest.param("GET", lambda: get_job("job-1"), id="get_job"),
    pytest.param("DELETE", lambda: cancel_job("job-1"), id="cancel_job"),
]


# submit_job


@pytest.mark.parametrize("status", [201, 200], ids=["created", "already-existing"])
def test_submit_job_puts_the_blob_id_as_json_and_returns_the_job(mocked, status):
    mocked.put(JOB_URL, json=document(), status=status)

    job = submit_job("job-1", blob_id="blob-1")

    assert job == RemoteJob(id="job-1", status="QUEUED", error=None)
    (call,) = mocked.calls
    assert call.request.method == "PUT"
    assert call.request.url == JOB_URL
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {"blob_id": "blob-1"}
    assert call.request.req_kwargs["timeout"] == (0.5, 4.0)


def test_submit_job_conflict_is_not_retryable_and_names_the_code(mocked):
    mocked.put(
        JOB_URL,
        json={"code": "job_conflict", "detail": "job-1 exists with another blob"},
        status=409,
    )

    with pytest.raises(DownstreamError) as caught:
        submit_job("job-1", blob_id="blob-1")

    error = caught.value
    assert error.service == "jobservice"
    assert error.retryable is False
    assert error.status_code == 409
    assert error.code == "job_conflict"
    assert error.message == "HTTP 409 job_conflict: job-1 exists with another blob"


def test_submit_job_for_an_unknown_blob_is_not_retryable(mocked):
    mocked.put(JOB_URL, json={"code": "blob_not_found"}, status=422)

    with pytest.raises(DownstreamError) as caught:
        submit_job("job-1", blob_id="blob-1")

    assert caught.value.retryable is False
    assert caught.value.code == "blob_not_found"
    assert "blob_not_found" in caught.value.message


def test_submit_job_validation_error_detail_is_included_compactly(mocked):
    mocked.put(JOB_URL, json={"code": "invalid", "detail": {"blob_id": ["required"]}}, status=400)

    with pytest.raises(DownstreamError) as caught:
        submit_job("job-1", blob_id="blob-1")

    assert caught.value.message == 'HTTP 400 invalid: {"blob_id":["required"]}'
    assert caught.value.retryable is False


def test_submit_job_escapes_the_job_id_as_a_single_path_segment(mocked):
    mocked.put("http://jobservice.test/api/jobs/a%2F..%3Fx", json=document(), status=201)

    submit_job("a/..?x", blob_id="blob-1")


def test_submit_job_does_not_follow_redirects(mocked):
    mocked.put(JOB_URL, status=308, headers={"Location": "http://elsewhere.test/jobs/job-1"})

    with pytest.raises(DownstreamError) as caught:
        submit_job("job-1", blob_id="blob-1")

    assert caught.value.status_code == 308
    assert caught.value.retryable is False
    assert len(mocked.calls) == 1


# get_job


@pytest.mark.parametrize("status", ["QUEUED", "RUNNING", "SUCCEEDED", "CANCELLED"])
def test_get_job_returns_each_known_status(mocked, status):
    mocked.get(JOB_URL, json=document(status=status))

    job = get_job("job-1")

    assert job.status == status
    assert job.is_final == (status in {"SUCCEEDED", "CANCELLED"})
    assert mocked.calls[0].request.method == "GET"
    assert mocked.calls[0].request.req_kwargs["timeout"] == (0.5, 4.0)


def test_get_job_returns_the_error_of_a_failed_job(mocked):
    mocked.get(JOB_URL, json=document(status="FAILED", error="exit code 3"))

    assert get_job("job-1") == RemoteJob(id="job-1", status="FAILED", error="exit code 3")


def test_get_job_of_an_unknown_job_raises_remote_job_not_found(mocked):
    mocked.get(JOB_URL, json={"code": "job_not_found"}, status=404)

    with pytest.raises(RemoteJobNotFound) as caught:
        get_job("job-1")

    assert caught.value.retryable is False
    assert caught.value.status_code == 404
    assert caught.value.code == "job_not_found"


def test_get_job_treats_a_404_without_the_service_code_as_a_plain_error(mocked):
    mocked.get(JOB_URL, body="Not Found", status=404)

    with pytest.raises(DownstreamError) as caught:
        get_job("job-1")

    assert not isinstance(caught.value, RemoteJobNotFound)
    assert caught.value.retryable is False


# cancel_job


def test_cancel_job_deletes_and_returns_the_cancelled_job(mocked):
    mocked.delete(JOB_URL, json=document(status="CANCELLED"))

    assert cancel_job("job-1") == RemoteJob(id="job-1", status="CANCELLED", error=None)
    assert mocked.calls[0].request.method == "DELETE"
    assert mocked.calls[0].request.url == JOB_URL


def test_cancel_job_of_a_finished_job_returns_it_instead_of_raising(mocked):
    mocked.delete(
        JOB_URL,
        json={"code": "job_final", "job": document(status="SUCCEEDED")},
        status=409,
    )

    job = cancel_job("job-1")

    assert job == RemoteJob(id="job-1", status="SUCCEEDED", error=None)
    assert job.is_final


def test_cancel_job_of_an_unknown_job_raises_remote_job_not_found(mocked):
    mocked.delete(JOB_URL, json={"code": "job_not_found", "detail": "no job"}, status=404)

    with pytest.raises(RemoteJobNotFound) as caught:
        cancel_job("job-1")

    assert caught.value.status_code == 404
    assert caught.value.retryable is False


def test_cancel_job_treats_a_404_without_the_service_code_as_a_plain_error(mocked):
    mocked.delete(JOB_URL, body="Not Found", status=404)

    with pytest.raises(DownstreamError) as caught:
        cancel_job("job-1")

    assert not isinstance(caught.value, RemoteJobNotFound)


def test_cancel_job_uses_the_configured_timeouts(mocked):
    mocked.delete(JOB_URL, json=document(status="CANCELLED"))

    cancel_job("job-1")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (0.5, 4.0)


def test_cancel_job_final_without_a_job_document_raises_the_conflict(mocked):
    mocked.delete(JOB_URL, json={"code": "job_final"}, status=409)

    with pytest.raises(DownstreamError) as caught:
        cancel_job("job-1")

    assert caught.value.code == "job_final"
    assert caught.value.retryable is False


def test_cancel_job_other_conflicts_raise(mocked):
    mocked.delete(JOB_URL, json={"code": "job_conflict", "job": document()}, status=409)

    with pytest.raises(DownstreamError) as caught:
        cancel_job("job-1")

    assert caught.value.code == "job_conflict"


# Shared classification, exercised through each call


@pytest.mark.parametrize(("method", "call"), CALLS)
@pytest.mark.parametrize(
    "exc",
    [requests.ConnectionError("refused"), requests.ReadTimeout("read timed out")],
    ids=["connection-error", "read-timeout"],
)
def test_transport_failures_are_retryable(mocked, method, call, exc):
    mocked.add(method, JOB_URL, body=exc)

    with pytest.raises(DownstreamError) as caught:
        call()

    assert caught.value.retryable is True
    assert caught.value.status_code is None


@pytest.mark.parametrize(("method", "call"), CALLS)
@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(mocked, method, call, status):
    mocked.add(method, JOB_URL, json={"code": "unavailable"}, status=status)

    with pytest.raises(DownstreamError) as caught:
        call()

    assert caught.value.retryable is True
    assert caught.value.status_code == status
    assert caught.value.code == "unavailable"


@pytest.mark.parametrize(("method", "call"), CALLS)
def test_429_is_retryable_after_the_advertised_delay(mocked, method, call):
    mocked.add(method, JOB_URL, status=429, headers={"Retry-After": "3"})

    with pytest.raises(DownstreamError) as caught:
        call()

    assert caught.value.retryable is True
    assert caught.value.retry_after == 3.0


def test_503_with_an_http_date_retry_after_gives_a_delay_in_seconds(mocked):
    mocked.get(JOB_URL, status=503, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"})

    with pytest.raises(DownstreamError) as caught:
        get_job("job-1")

    assert caught.value.retry_after > 0


@pytest.mark.parametrize(("method", "call"), CALLS)
@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_client_errors_are_not_retryable_and_name_the_code(mocked, method, call, status):
    mocked.add(method, JOB_URL, json={"code": "some_code", "detail": "why"}, status=status)

    with pytest.raises(DownstreamError) as caught:
        call()

    assert caught.value.retryable is False
    assert caught.value.status_code == status
    assert caught.value.message == f"HTTP {status} some_code: why"


@pytest.mark.parametrize(("method", "call"), CALLS)
def test_garbage_on_a_2xx_is_retryable(mocked, method, call):
    mocked.add(method, JOB_URL, body="<html>gateway page</html>", status=200)

    with pytest.raises(DownstreamError) as caught:
        call()

    assert caught.value.retryable is True
    assert caught.value.status_code == 200


@pytest.mark.parametrize(("method", "call"), CALLS)
def test_an_unknown_status_is_a_retryable_error_that_says_so(mocked, method, call):
    mocked.add(method, JOB_URL, json=document(status="PAUSED"))

    with pytest.raises(DownstreamError) as caught:
        call()

    assert caught.value.retryable is True
    assert "unknown job status 'PAUSED'" in caught.value.message


def test_an_unknown_status_inside_a_job_final_conflict_is_also_an_error(mocked):
    mocked.delete(
        JOB_URL, json={"code": "job_final", "job": document(status="ARCHIVED")}, status=409
    )

    with pytest.raises(DownstreamError) as caught:
        cancel_job("job-1")

    assert "unknown job status" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        [document()],
        "QUEUED",
        {"status": "QUEUED"},
        {"id": "job-1"},
        {"id": 7, "status": "QUEUED"},
        document(error={"reason": "x"}),
    ],
    ids=["list", "string", "no-id", "no-status", "id-not-string", "error-not-string"],
)
def test_a_job_document_off_contract_is_an_error(mocked, body):
    mocked.get(JOB_URL, json=body)

    with pytest.raises(DownstreamError) as caught:
        get_job("job-1")

    assert caught.value.retryable is True


def test_remote_job_refuses_an_unknown_status_when_built_directly():
    with pytest.raises(ValueError):
        RemoteJob(id="job-1", status="PAUSED", error=None)  # type: ignore[arg-type]
