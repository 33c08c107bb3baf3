"""The whole stack end to end: gunicorn, a django-q2 cluster on the configured broker (the suite
runs once with MongoDB's, once with Redis), the reference services.

What needs real processes stays here: a job through every process, a job waiting on the broker
while no worker runs, a SIGKILLed pusher. Every other path of the state diagram is tested
in-process: tests/jobs/api/test_output.py and tests/orchestration/test_services.py.
"""

import os
import signal

import pytest
import requests
from django.conf import settings

from frontservice.broker import process_broker
from jobs.models import Job
from tests.support.api import status_of, submit, wait_for_status
from tests.support.cluster import cluster_processes, restarts, wait_for_restart

# What the broker does here (delivery, redelivery, acknowledgement) differs between MongoDB
# and Redis: this file runs with each (make test-e2e, make test-e2e-redis).
pytestmark = pytest.mark.brokers

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
    worker = stack.processes["worker"]
    log_path = worker.log_path
    # The running cluster's pusher, by the PIDs below the worker the stack started (an earlier
    # test may have had the cluster restarted: the log's first pusher is long gone).
    [pusher] = cluster_processes(worker)["pusher"]
    before = len(restarts(worker, "jobs"))
    # Killed once the cluster's parent has used the database (its scheduler runs there), so
    # the cluster that replaces it is forked from a process whose clients it could inherit.
    # A dead pusher may hold its queue's lock: the supervisor restarts the whole cluster.
    os.kill(pusher, signal.SIGKILL)
    wait_for_restart(worker, before)

    job_id = submit(stack, alice, b"fork")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    # PyMongo warns in a child that uses a client its parent opened before forking.
    assert "opened before fork" not in log_path.read_text()
