"""POST /api/v1/job: the input is staged on disk, the job recorded, the answer immediate."""

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings

from jobs.models import Job
from tests.support.api import submit, wait_for_status


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def test_it_answers_202_with_location_and_the_job_document(stack, alice):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"some input",
        headers={**alice.headers, "Content-Type": "text/plain"},
        timeout=30,
    )

    assert response.status_code == 202
    body = response.json()
    assert response.headers["Location"] == body["links"]["status"]
    assert body["links"]["status"].endswith(f"/api/v1/job/{body['id']}/status")
    assert body["links"]["output"].endswith(f"/api/v1/job/{body['id']}/output")
    assert body["status"] == "CREATED"
    assert body["created_at"] and body["error"] is None
    job = Job.objects.get(pk=body["id"])
    assert (job.tenant_id, job.sub) == (alice.tenant_id, alice.sub)
    assert job.content_type == "text/plain"
    assert job.input_size == len(b"some input")


def test_it_stores_the_raw_body_in_blobservice_and_submits_it_once(stack, alice):
    body = submit(stack, alice, b"abc", **{"Content-Type": "text/plain"})

    wait_for_status(stack, alice, body["id"], {"EXECUTION_COMPLETED"})
    job = Job.objects.get(pk=body["id"])
    assert job.blob_id == body["id"] and job.remote_job_id == body["id"]
    assert stack.stats("job")["by_id"][body["id"]]["PUT"] == 1
    assert stack.stats("job")["executions"][body["id"]] == 1
    blob = requests.get(f"{stack.urls['blob']}/blobs/{job.blob_id}", timeout=10)
    assert blob.content == b"ABC" and blob.headers["Content-Type"] == "text/plain"
    # Once BlobService has the input, the staged copy is gone.
    assert not (Path(settings.STAGING_DIR) / body["id"]).exists()


def test_it_accepts_the_input_as_a_multipart_file_field(stack, alice):
    files = {"input": ("data.csv", b"a,b\n1,2\n", "text/csv")}
    response = requests.post(
        f"{stack.api}/api/v1/job", files=files, headers=alice.headers, timeout=30
    )

    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = Job.objects.get(pk=job_id)
    assert job.content_type == "text/csv" and job.input_size == 8
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    output = requests.get(
        f"{stack.api}/api/v1/job/{job_id}/output", headers=alice.headers, timeout=30
    )
    assert output.content == b"A,B\n1,2\n"
    assert output.headers["Content-Type"] == "text/csv"


def test_it_accepts_a_chunked_body(stack, alice):
    def chunks():
        yield b"hello "
        yield b"chunked world"

    response = requests.post(
        f"{stack.api}/api/v1/job", data=chunks(), headers=alice.headers, timeout=30
    )

    assert response.status_code == 202, response.text
    assert Job.objects.get(pk=response.json()["id"]).input_size == len(b"hello chunked world")


def test_it_rejects_an_empty_body_and_records_nothing(stack, alice):
    response = requests.post(f"{stack.api}/api/v1/job", data=b"", headers=alice.headers, timeout=30)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "empty_input"
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert _staging_tmp_files() == []


def test_it_rejects_multipart_without_the_input_field(stack, alice):
    response = requests.post(
        f"{stack.api}/api/v1/job",
        files={"other": ("x", b"data")},
        headers=alice.headers,
        timeout=30,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "missing_input"
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


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


def test_it_answers_405_as_a_problem_document(stack, alice):
    response = requests.put(f"{stack.api}/api/v1/job", data=b"x", headers=alice.headers, timeout=30)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_unknown_url_is_a_json_404(stack, alice):
    response = requests.get(f"{stack.api}/api/v1/nothing-here", headers=alice.headers, timeout=30)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


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


def test_a_body_that_is_invalid_json_is_still_just_an_input(stack, alice):
    # The API never parses the input: any bytes in any content type are a job's input.
    response = requests.post(
        f"{stack.api}/api/v1/job",
        data=b'{"not": json',
        headers={**alice.headers, "Content-Type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.content_type == "application/json" and job.input_size == 12
