"""No job lost, none duplicated, when a worker process dies or is stopped: a real django-q2
cluster, SIGKILLed mid-task and stopped with signals.

A task whose worker dies comes back by the MongoDB broker's delivery receipt (after Q_RETRY,
16 s in the tests) or, with the Redis broker (no receipts), by the reconciler re-enqueueing the
job. Either way the job must reach its right final state with one blob and one job downstream.
The reconciler's own passes and the task's attempt budget are tested in-process
(tests/orchestration/test_reconcile.py, tests/orchestration/test_tasks.py).
"""

import os
import signal
import time
from datetime import timedelta

import pytest
import requests
from django.conf import settings

from jobs.models import Job
from orchestration.reconcile import reconcile
from tests.support.api import submit, wait_for_status, wait_for_stored_status
from tests.support.cluster import worker_pid_running
from tests.support.stack import wait_for_log

# What the broker does here (delivery, redelivery, acknowledgement) differs between MongoDB
# and Redis: this file runs with each (make test-e2e, make test-e2e-redis).
pytestmark = pytest.mark.brokers


def _bring_back_lost_tasks():
    """With Redis the killed worker's task is gone: the reconciler's pass re-enqueues it.
    With MongoDB the broker delivers it again by itself, so nothing is done here."""
    if settings.REDIS_URL:
        reconcile(stuck_after=timedelta(0))


def _assert_once_downstream(stack, job_id: str, content: bytes):
    blob = requests.get(f"{stack.urls['blob']}/blobs/{job_id}", timeout=10)
    assert blob.status_code == 200 and blob.content == content
    assert stack.stats("job")["executions"] == {job_id: 1}


def _kill_the_worker_running(stack, job_id: str) -> None:
    pid = worker_pid_running(stack.processes["worker"].log_path, job_id)
    time.sleep(0.5)  # well inside the held call
    os.kill(pid, signal.SIGKILL)
    wait_for_log(stack.processes["worker"], "reincarnated worker")


def test_a_worker_killed_during_the_upload_is_recovered(quiet_stack, alice):
    stack = quiet_stack
    requests.post(f"{stack.urls['job']}/_control/reset-stats", timeout=5)
    # Held, not delayed: the killed worker's PUT ends when the faults are cleared, before its
    # redelivery starts. A delayed one could land after the job completed and overwrite the
    # output, which JobService writes under the input's blob id.
    stack.faults("blob", hold=30, methods=["PUT"])
    job_id = submit(stack, alice, b"killed while uploading")["id"]

    _kill_the_worker_running(stack, job_id)
    stack.clear_faults()
    assert Job.objects.get(pk=job_id).status == "CREATED"
    _bring_back_lost_tasks()

    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=60)
    _assert_once_downstream(stack, job_id, b"KILLED WHILE UPLOADING")
    # Two deliveries: the killed one, and the one that finished (and reset the count).
    log = stack.processes["worker"].log_path.read_text()
    assert log.count(f"processing orchestrate-{job_id}") == 2
    assert Job.objects.get(pk=job_id).deliveries == 0


def test_a_worker_killed_during_the_submit_is_recovered(quiet_stack, alice):
    stack = quiet_stack
    requests.post(f"{stack.urls['job']}/_control/reset-stats", timeout=5)
    stack.faults("job", hold=30, methods=["PUT"])
    job_id = submit(stack, alice, b"killed while submitting")["id"]
    wait_for_stored_status(job_id, {"STORED"})

    _kill_the_worker_running(stack, job_id)
    stack.clear_faults()
    _bring_back_lost_tasks()

    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=60)
    _assert_once_downstream(stack, job_id, b"KILLED WHILE SUBMITTING")
    transitions = [(e["from"], e["to"]) for e in Job.objects.get(pk=job_id).history]
    assert transitions == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]


def test_sigterm_lets_the_running_task_finish_within_the_grace_period(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("blob", delay=1.5, methods=["PUT"])
    job_id = submit(stack, alice, b"finish me")["id"]
    worker_pid_running(stack.processes["worker"].log_path, job_id)

    started = time.monotonic()
    stack.stop("worker")
    stopped_after = time.monotonic() - started
    stack.start("worker")

    assert stopped_after < float(os.environ["Q_STOP_GRACE"])
    # The task was finished, not abandoned: the job got past CREATED before the stop.
    job = Job.objects.get(pk=job_id)
    assert [entry["to"] for entry in job.history][:2] == ["STORED", "SUBMITTED"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})


def test_a_task_outliving_the_grace_period_is_killed_and_delivered_again(quiet_stack, alice):
    stack = quiet_stack
    requests.post(f"{stack.urls['job']}/_control/reset-stats", timeout=5)
    stack.stop("worker")
    stack.start("worker", Q_STOP_GRACE="1")
    # The upload is held for up to 30 s: the task would outlive the 1 s grace by far.
    stack.faults("blob", hold=30, methods=["PUT"])
    job_id = submit(stack, alice, b"too slow to stop")["id"]
    worker_pid_running(stack.processes["worker"].log_path, job_id)

    started = time.monotonic()
    stack.stop("worker")
    stopped_after = time.monotonic() - started
    stack.clear_faults()
    stack.start("worker")
    _bring_back_lost_tasks()

    # Killed at the grace, not waited for: about 1.5 s, and at most the grace plus the 3 s
    # the worker gives a stop that the kill left stuck (slack for a loaded machine).
    assert stopped_after < 10
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=60)
    _assert_once_downstream(stack, job_id, b"TOO SLOW TO STOP")


def test_stop_signals_to_every_process_and_twice_still_stop_the_worker(quiet_stack, alice):
    # Ctrl-C in a terminal signals the whole process group, and a process manager
    # then sends its own SIGTERM: the cluster's processes get a signal each, its leader two.
    stack = quiet_stack
    worker = stack.processes.pop("worker")
    try:
        os.killpg(worker.pid, signal.SIGTERM)
        time.sleep(0.2)
        os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + float(os.environ["Q_STOP_GRACE"]) + 20
        while worker.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        exited = not worker.alive
    finally:
        worker.stop()  # SIGKILL if it hung, so the next tests get a fresh worker either way
        stack.start("worker")

    assert exited, worker.log_tail()
    # The new cluster works.
    job_id = submit(stack, alice, b"after the stop")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
