"""GET /api/v1/job/{id}/output: the output of a completed job, streamed from BlobService in its
own content type; a job not final has none yet, a failed one never will.

Whole-stack runs of the same path (gunicorn, a cluster, both brokers) are in
tests/e2e/test_lifecycle.py; the store and submit failures in tests/orchestration/test_services.py.
"""

import uuid

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
