"""A webhook receiver that never answers holds no worker that jobs need: deliveries run on the
webhooks' own queue and cluster (`manage.py worker` runs one per queue), so while a tenant's
callbacks wait out their read timeouts again and again, another owner's jobs complete in
normal time. Which queue each task lands on is tested in-process (tests/webhooks,
tests/orchestration test_receivers.py)."""

import re
import time

import pytest
import requests

from jobs.models import Job, WebhookStatus
from tests.support.api import submit, wait_for_status
from tests.support.cluster import READY, cluster_processes
from tests.support.webhooks import SilentReceiver
from webhooks.models import WebhookDelivery

# Where a task is delivered differs between the brokers (a MongoDB collection or a Redis list
# per queue): this file runs with each (make test-e2e, make test-e2e-redis).
pytestmark = pytest.mark.brokers

SILENT_JOBS = 6  # more deliveries than the webhooks' cluster has workers
OTHER_JOBS = 4
# A job normally completes in about a second here (JobService's execution takes 0.3 s); the
# bound is for a loaded 2-core box, and far below the webhooks' waits it must not include.
NORMAL_TIME = 30
PROCESSING_WEBHOOK = re.compile(r"(Process-[0-9a-f]+) processing webhook-([0-9a-f-]{36})")


@pytest.fixture
def silent_receiver():
    started = SilentReceiver().start()
    yield started
    started.stop()


@pytest.fixture
def persistent_webhooks(quiet_stack):
    """The stack with a worker that keeps re-sending for minutes (the test settings give up
    after 3 s), so the silent receiver holds the webhooks' workers for the whole test."""
    with quiet_stack.worker_with(WEBHOOK_RETRY_HORIZON="300") as stack:
        yield stack


def test_a_receiver_that_never_answers_does_not_delay_another_owners_jobs(
    persistent_webhooks, alice, bob, silent_receiver
):
    stack = persistent_webhooks
    worker = stack.processes["worker"]
    silent = [
        _submit_with_callback(stack, alice, f"silent {n}".encode(), silent_receiver.url())
        for n in range(SILENT_JOBS)
    ]
    # Final once their owner asks (a status request refreshes from JobService): their
    # webhooks are then due.
    for job_id in silent:
        wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=NORMAL_TIME)
    # Every webhook worker is held: the receiver has as many connections open as there are
    # workers of the webhooks' cluster, and more deliveries wait behind them.
    webhook_workers = cluster_processes(worker, "webhooks")["worker"]
    _wait_until(lambda: silent_receiver.accepted >= len(webhook_workers), "deliveries held")

    started = time.monotonic()
    others = [submit(stack, bob, f"bob {n}".encode())["id"] for n in range(OTHER_JOBS)]
    for job_id in others:
        final = wait_for_status(stack, bob, job_id, {"EXECUTION_COMPLETED"}, timeout=NORMAL_TIME)
        assert final["status"] == "EXECUTION_COMPLETED"
    took = time.monotonic() - started

    for job_id in others:
        job = Job.objects.get(pk=job_id)
        assert (job.status, job.blob_id, job.remote_job_id) == (
            "EXECUTION_COMPLETED",
            job_id,
            job_id,
        )
        assert job.webhook_status == ""  # bob asked for none
    # Each of bob's jobs executed once in JobService, whatever the webhooks were doing.
    executions = stack.stats("job")["executions"]
    assert {job_id: executions.get(job_id) for job_id in others} == dict.fromkeys(others, 1)
    # Meanwhile alice's webhooks still wait on the receiver: pending, sent again and again
    # (a worker that timed out takes the next delivery), every attempt a read timeout.
    _wait_until(lambda: silent_receiver.accepted > len(webhook_workers), "delivery re-sent")
    pending = Job.objects.filter(pk__in=silent, webhook_status=WebhookStatus.PENDING).count()
    assert pending == SILENT_JOBS
    attempts = [a for d in WebhookDelivery.objects.filter(job_id__in=silent) for a in d.attempts]
    assert attempts and all(a["status_code"] is None and a["error"] for a in attempts)
    # Only the webhooks' cluster ran deliveries: no jobs' worker ever waited on the receiver.
    jobs_workers = set(cluster_processes(worker, "jobs")["worker"])
    log = worker.log_path.read_text()
    pid_of = {name: int(pid) for name, pid in READY.findall(log)}
    delivered_by = {pid_of[name] for name, job_id in PROCESSING_WEBHOOK.findall(log)}
    assert delivered_by and not delivered_by & jobs_workers
    print(f"{OTHER_JOBS} jobs of another owner completed in {took:.1f}s")


def _submit_with_callback(stack, owner, data: bytes, url: str) -> str:
    response = requests.post(
        f"{stack.api}/api/v1/job",
        params={"callback_url": url},
        data=data,
        headers={**owner.headers, "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.1)
