"""GET /api/v1/job/{id}/output: the output of a completed job, streamed from BlobService in its
own content type; a job not final has none yet, a failed one never will.

Whole-stack runs of the same path (gunicorn, a cluster, both brokers) are in
tests/e2e/test_lifecycle.py; the store and submit failures in tests/orchestration/test_services.py.
"""

import uuid

import pytest

from jobs.models import Job
from tests.support.inprocess import body_of, run_tasks, submit, wait_for_status

INPUT = b"Hello, World! abc-xyz 0123 \xc3\xa9\xff\x00 end"


def _transitions(job_id) -> list[tuple[str, str]]:
    return [(entry["from"], entry["to"]) for entry in Job.objects.get(pk=job_id).history]


def test_a_job_completes_and_its_output_is_the_uppercased_input(api, alice):
    job_id = submit(api, alice, INPUT, content_type="application/x-demo")["id"]

    body = wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})

    assert body["error"] is None
    output = api.output_of(alice, job_id)
    assert output.status_code == 200
    assert body_of(output) == b"HELLO, WORLD! ABC-XYZ 0123 \xc3\xa9\xff\x00 END"
    assert output["Content-Type"] == "application/x-demo"
    assert output["Content-Length"] == str(len(INPUT))
    assert _transitions(job_id) == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]


def test_a_failing_execution_ends_in_execution_error(api, alice):
    job_id = submit(api, alice, b"#fail please")["id"]

    body = wait_for_status(api, alice, job_id, {"EXECUTION_ERROR"})

    assert body["error"]["service"] == "jobservice"
    assert body["error"]["code"] == "execution_failed"
    assert "#fail" in body["error"]["message"]
    output = api.output_of(alice, job_id)
    assert output.status_code == 404 and output.json()["code"] == "job_failed"
    assert _transitions(job_id)[-1] == ("SUBMITTED", "EXECUTION_ERROR")


def test_output_of_a_created_job_is_not_ready(api, services, alice):
    # No task has run: the job waits in CREATED and BlobService has not heard of it.
    job_id = submit(api, alice, b"queued")["id"]

    output = api.output_of(alice, job_id)

    assert output.status_code == 404 and output.json()["code"] == "output_not_ready"
    assert api.status_of(alice, job_id).json()["status"] == "CREATED"
    assert job_id not in services.stats("blob")["by_id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    assert body_of(api.output_of(alice, job_id)) == b"QUEUED"


def test_output_of_a_submitted_job_is_not_ready(api, services, alice):
    services.faults("job", execution_delay=30)
    job_id = submit(api, alice, b"slow")["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"

    try:
        output = api.output_of(alice, job_id)

        assert output.status_code == 404 and output.json()["code"] == "output_not_ready"
        assert api.status_of(alice, job_id).json()["status"] == "SUBMITTED"
        # Both requests asked JobService (the job is not final).
        assert services.stats("job")["by_id"][job_id]["GET"] == 2
    finally:
        services.cancel_remote(job_id)


def test_output_is_served_in_its_own_type_whatever_the_accept_header(api, alice):
    job_id = submit(api, alice, b"a,b", content_type="text/csv")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    csv_only = {"Accept": "text/csv"}

    output = api.output_of(alice, job_id, headers=csv_only)
    missing = api.output_of(alice, str(uuid.uuid4()), headers=csv_only)

    assert output.status_code == 200 and body_of(output) == b"A,B"
    assert output["Content-Type"] == "text/csv"
    assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"


# Byte ranges and conditional requests: passed through to BlobService, its answer relayed.

DIGITS = b"abcdefghijklmnopqrstuvwxyz0123456789"
UPPER = DIGITS.upper()


@pytest.fixture
def completed_job(api, alice) -> str:
    job_id = submit(api, alice, DIGITS, content_type="text/plain")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    return job_id


def _blob_gets(services, job_id) -> int:
    return services.stats("blob")["by_id"][job_id].get("GET", 0)


def test_the_output_carries_blobservice_s_etag_and_accepts_ranges(api, alice, completed_job):
    output = api.output_of(alice, completed_job)

    assert output.status_code == 200 and body_of(output) == UPPER
    assert output["Accept-Ranges"] == "bytes"
    assert output["ETag"].startswith('"') and len(output["ETag"]) > 2
    assert api.output_of(alice, completed_job)["ETag"] == output["ETag"]


def test_head_answers_the_output_s_headers_without_its_body(api, alice, completed_job):
    full = api.output_of(alice, completed_job)

    head = api.request("head", f"/api/v1/job/{completed_job}/output", alice)

    assert head.status_code == 200
    # Not a stream that Django's test client (or gunicorn) would drain and drop: no body at all.
    assert not head.streaming and head.content == b""
    assert head["Content-Length"] == str(len(UPPER))
    assert head["Content-Type"].startswith("text/plain")
    assert head["ETag"] == full["ETag"]
    assert head["Accept-Ranges"] == "bytes"
    ranged = api.request(
        "head", f"/api/v1/job/{completed_job}/output", alice, headers={"Range": "bytes=0-9"}
    )
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == "bytes 0-9/36" and ranged["Content-Length"] == "10"


@pytest.mark.parametrize(
    ("spec", "part", "content_range"),
    [("bytes=0-9", UPPER[:10], "bytes 0-9/36"), ("bytes=30-", UPPER[30:], "bytes 30-35/36")],
)
def test_a_range_answers_206_with_that_part(
    api, services, alice, completed_job, spec, part, content_range
):
    before = _blob_gets(services, completed_job)

    output = api.output_of(alice, completed_job, headers={"Range": spec})

    assert output.status_code == 206
    assert body_of(output) == part
    assert output["Content-Range"] == content_range
    assert output["Content-Length"] == str(len(part))
    assert output["Content-Type"] == "text/plain"
    assert _blob_gets(services, completed_job) == before + 1  # BlobService answered the range


def test_a_range_past_the_end_answers_416_with_the_output_s_size(api, alice, completed_job):
    output = api.output_of(alice, completed_job, headers={"Range": "bytes=36-"})

    assert output.status_code == 416
    assert output["Content-Type"] == "application/problem+json"
    assert output["Content-Range"] == "bytes */36"
    assert output.json()["code"] == "range_not_satisfiable"
    assert Job.objects.get(pk=completed_job).status == "EXECUTION_COMPLETED"


def test_if_none_match_with_the_current_etag_answers_304(api, alice, completed_job):
    etag = api.output_of(alice, completed_job)["ETag"]

    cached = api.output_of(alice, completed_job, headers={"If-None-Match": etag})
    stale = api.output_of(alice, completed_job, headers={"If-None-Match": '"another"'})

    assert cached.status_code == 304
    assert body_of(cached) == b""
    assert cached["ETag"] == etag
    assert stale.status_code == 200 and body_of(stale) == UPPER


def test_if_range_gets_the_range_only_while_the_etag_is_current(api, alice, completed_job):
    etag = api.output_of(alice, completed_job)["ETag"]

    resumed = api.output_of(alice, completed_job, headers={"Range": "bytes=26-", "If-Range": etag})
    other = api.output_of(
        alice, completed_job, headers={"Range": "bytes=26-", "If-Range": '"another"'}
    )

    assert resumed.status_code == 206 and body_of(resumed) == b"0123456789"
    assert other.status_code == 200 and body_of(other) == UPPER


def test_a_range_on_a_job_without_output_is_still_its_404(api, services, alice):
    job_id = submit(api, alice, b"queued")["id"]

    output = api.output_of(alice, job_id, headers={"Range": "bytes=0-1"})

    assert output.status_code == 404 and output.json()["code"] == "output_not_ready"
    assert job_id not in services.stats("blob")["by_id"]
