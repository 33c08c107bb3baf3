"""Every path of the seed's state diagram, reached through the API against real services."""

import os
import re
import signal
import uuid
from pathlib import Path

import requests
from django.conf import settings

from frontservice.broker import process_broker
from jobs.models import Job
from tests.conftest import wait_for_log
from tests.support.api import status_of, submit, wait_for_status, wait_for_stored_status

INPUT = b"Hello, World! abc-xyz 0123 \xc3\xa9\xff\x00 end"


def _output(stack, owner, job_id) -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/job/{job_id}/output", headers=owner.headers, timeout=30
    )


def _transitions(job_id) -> list[tuple[str, str]]:
    return [(entry["from"], entry["to"]) for entry in Job.objects.get(pk=job_id).history]


def test_a_job_completes_and_its_output_is_the_uppercased_input(stack, alice):
    job_id = submit(stack, alice, INPUT, **{"Content-Type": "application/x-demo"})["id"]

    body = wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    assert body["error"] is None
    output = _output(stack, alice, job_id)
    assert output.status_code == 200
    assert output.content == b"HELLO, WORLD! ABC-XYZ 0123 \xc3\xa9\xff\x00 END"
    assert output.headers["Content-Type"] == "application/x-demo"
    assert output.headers["Content-Length"] == str(len(INPUT))
    assert _transitions(job_id) == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]


def test_blobservice_down_ends_in_stored_error_and_keeps_the_staged_input(quiet_stack, alice):
    stack = quiet_stack
    stack.stop("blob")
    try:
        job_id = submit(stack, alice, b"never stored")["id"]
        job = wait_for_stored_status(job_id, {"STORED_ERROR"})
    finally:
        stack.start("blob")

    assert job.error["service"] == "blobservice"
    body = status_of(stack, alice, job_id).json()
    assert body["status"] == "STORED_ERROR"
    assert body["error"]["service"] == "blobservice"
    assert body["error"]["code"] == "store_failed"
    output = _output(stack, alice, job_id)
    assert output.status_code == 404 and output.json()["code"] == "job_failed"
    assert job_id not in stack.stats("job")["by_id"]
    # An operator retry (STORED_ERROR -> CREATED) needs the input again.
    assert (Path(settings.STAGING_DIR) / job_id).read_bytes() == b"never stored"
    assert _transitions(job_id) == [("CREATED", "STORED_ERROR")]


def test_jobservice_refusing_ends_in_submitted_error(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", fail_next=1, status=400, methods=["PUT"])

    job_id = submit(stack, alice, b"refused")["id"]
    job = wait_for_stored_status(job_id, {"SUBMITTED_ERROR"})

    assert job.error["service"] == "jobservice" and job.error["status_code"] == 400
    body = status_of(stack, alice, job_id).json()
    assert body["status"] == "SUBMITTED_ERROR"
    assert body["error"] == {
        "code": "submit_failed",
        "service": "jobservice",
        "message": job.error["message"],
        "status_code": 400,
    }
    output = _output(stack, alice, job_id)
    assert output.status_code == 404 and output.json()["code"] == "job_failed"
    assert stack.stats("job").get("executions", {}).get(job_id) is None
    assert _transitions(job_id) == [("CREATED", "STORED"), ("STORED", "SUBMITTED_ERROR")]


def test_a_failing_execution_ends_in_execution_error(stack, alice):
    job_id = submit(stack, alice, b"#fail please")["id"]

    body = wait_for_status(stack, alice, job_id, {"EXECUTION_ERROR"})

    assert body["error"]["service"] == "jobservice"
    assert body["error"]["code"] == "execution_failed"
    assert "#fail" in body["error"]["message"]
    output = _output(stack, alice, job_id)
    assert output.status_code == 404 and output.json()["code"] == "job_failed"
    assert _transitions(job_id)[-1] == ("SUBMITTED", "EXECUTION_ERROR")


def test_output_of_a_submitted_job_is_not_ready(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, b"slow")["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})

    output = _output(stack, alice, job_id)

    assert output.status_code == 404 and output.json()["code"] == "output_not_ready"
    assert status_of(stack, alice, job_id).json()["status"] == "SUBMITTED"
    # Both requests asked JobService (the job is not final).
    assert stack.stats("job")["by_id"][job_id]["GET"] == 2
    stack.cancel_remote(job_id)


def test_a_job_waits_in_created_while_no_worker_runs_and_completes_after(quiet_stack, alice):
    stack = quiet_stack
    stack.stop("worker")
    broker = process_broker()
    # The suite runs once per broker (make test): the task must sit in the configured one.
    expected = "Redis" if settings.REDIS_URL else "ForkSafeMongo"
    assert type(broker).__name__ == expected
    try:
        job_id = submit(stack, alice, b"queued")["id"]
        assert broker.queue_size() == 1
        assert status_of(stack, alice, job_id).json()["status"] == "CREATED"
        output = _output(stack, alice, job_id)
        assert output.status_code == 404 and output.json()["code"] == "output_not_ready"
        assert job_id not in stack.stats("blob")["by_id"]
    finally:
        stack.start("worker")

    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    assert _output(stack, alice, job_id).content == b"QUEUED"


def test_a_killed_pusher_is_replaced_and_carries_no_mongo_client_across_the_fork(
    quiet_stack, alice
):
    stack = quiet_stack
    log_path = stack.processes["worker"].log_path
    pusher = int(re.search(r"pushing tasks at (\d+)", log_path.read_text()).group(1))
    # Killed once the cluster's parent has used the database (its scheduler runs there), so
    # the replacement is forked from a process whose clients it could inherit. (Only the
    # pusher: a process killed while blocked in a multiprocessing queue's get() takes the
    # queue's lock with it, see README "Known limits".)
    os.kill(pusher, signal.SIGKILL)
    wait_for_log(stack.processes["worker"], "reincarnated pusher")

    job_id = submit(stack, alice, b"fork")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    # PyMongo warns in a child that uses a client its parent opened before forking.
    assert "opened before fork" not in log_path.read_text()


def test_output_is_served_in_its_own_type_whatever_the_accept_header(stack, alice):
    job_id = submit(stack, alice, b"a,b", **{"Content-Type": "text/csv"})["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    csv_only = {**alice.headers, "Accept": "text/csv"}

    output = requests.get(f"{stack.api}/api/v1/job/{job_id}/output", headers=csv_only, timeout=30)
    missing = requests.get(
        f"{stack.api}/api/v1/job/{uuid.uuid4()}/output", headers=csv_only, timeout=30
    )

    assert output.status_code == 200 and output.content == b"A,B"
    assert output.headers["Content-Type"] == "text/csv"
    assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"
