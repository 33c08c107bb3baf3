"""POST /api/v1/job: the input is staged on disk, the job recorded, the answer immediate.

What depends on gunicorn reading the socket (chunked bodies, its header limits, an answer sent
before the body) is in tests/e2e/test_upload.py.
"""

from pathlib import Path

import requests
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from tests.support.inprocess import body_of, submit, wait_for_status
from tests.support.jobs_api import assert_problem, staging_tmp_files, unread_body


def test_it_answers_202_with_location_and_the_job_document(api, alice):
    response = api.submit(alice, b"some input", content_type="text/plain")

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["links"]["status"]
    assert body["links"]["status"].endswith(f"/api/v1/job/{body['id']}/status")
    assert body["links"]["output"].endswith(f"/api/v1/job/{body['id']}/output")
    assert body["status"] == "CREATED"
    assert body["created_at"] and body["error"] is None
    job = Job.objects.get(pk=body["id"])
    assert (job.tenant_id, job.sub) == (alice.tenant_id, alice.sub)
    assert job.content_type == "text/plain"
    assert job.input_size == len(b"some input")


def test_it_stores_the_raw_body_in_blobservice_and_submits_it_once(api, services, alice):
    body = submit(api, alice, b"abc", content_type="text/plain")

    wait_for_status(api, alice, body["id"], {"EXECUTION_COMPLETED"})
    job = Job.objects.get(pk=body["id"])
    assert job.blob_id == body["id"] and job.remote_job_id == body["id"]
    assert services.stats("job")["by_id"][body["id"]]["PUT"] == 1
    assert services.stats("job")["executions"][body["id"]] == 1
    blob = requests.get(f"{services.urls['blob']}/blobs/{job.blob_id}", timeout=10)
    assert blob.content == b"ABC" and blob.headers["Content-Type"] == "text/plain"
    # Once BlobService has the input, the staged copy is gone.
    assert not (Path(settings.STAGING_DIR) / body["id"]).exists()


def test_it_accepts_the_input_as_a_multipart_file_field(api, alice):
    upload = SimpleUploadedFile("data.csv", b"a,b\n1,2\n", content_type="text/csv")
    response = api.post("/api/v1/job", alice, data={"input": upload}, format="multipart")

    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    job = Job.objects.get(pk=job_id)
    assert job.content_type == "text/csv" and job.input_size == 8
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    output = api.output_of(alice, job_id)
    assert body_of(output) == b"A,B\n1,2\n"
    assert output["Content-Type"] == "text/csv"


def test_it_rejects_an_empty_body_and_records_nothing(api, alice):
    # An empty body as a client sends it: Content-Length: 0.
    response = api.submit(alice, b"", CONTENT_LENGTH="0")

    assert_problem(response, 400, "empty_input")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert staging_tmp_files() == []


def test_it_rejects_multipart_without_the_input_field(api, alice):
    upload = SimpleUploadedFile("x", b"data")
    response = api.post("/api/v1/job", alice, data={"other": upload}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "missing_input"
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_it_refuses_a_declared_oversized_body_before_reading_it(api, alice):
    # Not a byte of the body is read (reading NeverRead would end in a 500): the answer comes
    # anyway.
    response = api.submit(alice, b"", **unread_body(settings.MAX_INPUT_BYTES + 1))

    assert_problem(response, 413, "input_too_large")
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert staging_tmp_files() == []


def test_it_answers_405_as_a_problem_document(api, alice):
    response = api.request(
        "put", "/api/v1/job", alice, data=b"x", content_type="application/octet-stream"
    )

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_unknown_url_is_a_json_404(api, alice):
    response = api.get("/api/v1/nothing-here", alice)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_body_that_is_invalid_json_is_still_just_an_input(api, alice):
    # The API never parses the input: any bytes in any content type are a job's input.
    response = api.submit(alice, b'{"not": json', content_type="application/json")

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.content_type == "application/json" and job.input_size == 12


def test_its_times_are_the_ones_every_later_answer_shows(api, alice):
    created = submit(api, alice, b"what time is it")

    later = api.status_of(alice, created["id"]).json()  # no task ran: still CREATED

    # MongoDB keeps milliseconds; the POST's answer is cut to them before it is sent.
    assert later["status"] == "CREATED"
    assert (created["created_at"], created["updated_at"]) == (
        later["created_at"],
        later["updated_at"],
    )


def test_the_times_read_from_its_history_are_to_the_millisecond_like_its_own(api, alice):
    created = submit(api, alice, b"what time was it submitted")

    final = wait_for_status(api, alice, created["id"], {"EXECUTION_COMPLETED"})

    # submitted_at and finished_at come from the history; updated_at from the job itself.
    assert final["finished_at"] == final["updated_at"]
    times = [final[name] for name in ("created_at", "submitted_at", "finished_at", "updated_at")]
    assert all(at.endswith("Z") and len(at) == len("2026-01-01T00:00:00.000000Z") for at in times)
    assert all(at[-4:-1] == "000" for at in times), times
    assert final == api.status_of(alice, created["id"]).json()
