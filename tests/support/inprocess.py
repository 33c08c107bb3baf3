"""The service in the test process: the API through DRF's test client, the worker's tasks run
here from the real broker queue, the reference BlobService and JobService as real processes.

Nothing is mocked: a POST goes through the middleware, authentication, throttling and the view,
the job is stored in the embedded MongoDB, and its task is enqueued on the django-q2 broker
like in production. `run_tasks()` then takes the queued tasks off that broker and runs them in
this process, in the order the broker hands them out, as a cluster's worker would (without the
fork): so a test decides when the worker tier moves, and sees every state in between.

Tests that need a real cluster, gunicorn or a restarted database are in tests/e2e.
"""

import time
from dataclasses import dataclass, field

import requests
from django.db.models import Q
from django.utils.module_loading import import_string
from django_q.signing import SignedPackage
from rest_framework.test import APIClient

from frontservice.broker import QUEUES, process_broker
from jobs.models import Job
from orchestration.dispatch import dispatch_pass
from orchestration.models import CircuitBreaker
from tests.support.api import Owner

# A task that enqueues another (a webhook after the job's last step) is drained in the same
# call; a bound on the rounds turns a task that enqueues itself for ever into a failure.
MAX_TASKS = 500


def run_tasks(*, max_tasks: int = MAX_TASKS) -> list[str]:
    """Run every task waiting on the broker, in this process, until none is left; their names.

    Both queues are drained (the jobs', then the webhooks', until neither has a task), as the
    clusters of `manage.py worker` would. Each task is acknowledged after it ran, as the worker
    does (frontservice.broker), so a task that raised stays on the queue and is delivered again
    after Q_RETRY, like in a cluster.
    """
    brokers = [process_broker(queue) for queue in QUEUES]
    ran: list[str] = []
    while any(broker.queue_size() for broker in brokers):
        for broker in brokers:
            while broker.queue_size():
                for ack_id, payload in broker.dequeue() or []:
                    task = SignedPackage.loads(payload)
                    func = task["func"]
                    if isinstance(func, str):
                        func = import_string(func)
                    func(*task["args"], **task["kwargs"])
                    broker.acknowledge(ack_id)
                    ran.append(task["name"])
                    assert len(ran) <= max_tasks, f"more than {max_tasks} tasks: {ran[-5:]}"
    return ran


def run_until_settled(*job_ids, timeout: float = 30) -> list[str]:
    """Run the tasks, and the dispatcher's passes as `manage.py worker` would, until none of
    these jobs waits for a next attempt (of a step or of its webhook); the tasks' names."""
    deadline = time.monotonic() + timeout
    ran = run_tasks()
    waiting = Q(next_attempt_at__isnull=False) | Q(webhook_next_attempt_at__isnull=False)
    while Job.objects.filter(waiting, pk__in=list(job_ids)).exists():
        assert time.monotonic() < deadline, f"jobs still waiting for an attempt after {timeout}s"
        time.sleep(0.05)
        dispatch_pass()
        ran += run_tasks()
    return ran


def clear_circuits() -> None:
    """Every downstream circuit closed: an earlier test's outage does not hold this one's jobs."""
    CircuitBreaker.objects.all().delete()


def clear_tasks() -> None:
    """Forget every waiting task (an earlier test's leftovers), without running them."""
    for queue in QUEUES:
        process_broker(queue).purge_queue()


@dataclass
class Downstream:
    """The reference services, as real processes on free ports (see tests/conftest.py)."""

    urls: dict[str, str] = field(default_factory=dict)

    def stats(self, name: str) -> dict:
        return requests.get(f"{self.urls[name]}/_control/stats", timeout=5).json()

    def faults(self, name: str, **faults) -> None:
        response = requests.post(f"{self.urls[name]}/_control/faults", json=faults, timeout=5)
        response.raise_for_status()

    def release(self, name: str) -> None:
        """Clear `name`'s faults, which lets the requests a `hold` fault keeps waiting go on."""
        requests.delete(f"{self.urls[name]}/_control/faults", timeout=5).raise_for_status()

    def reset(self) -> None:
        """No fault injected, and every counter at zero: a test sees only its own traffic.

        An earlier test's job that JobService still runs would write its output to BlobService
        during the next test (and could take a fault meant for that test's job): it is waited
        for first, a few seconds at most."""
        for name in ("blob", "job"):
            requests.delete(f"{self.urls[name]}/_control/faults", timeout=5).raise_for_status()
        deadline = time.monotonic() + 5
        while self.stats("job").get("unfinished") and time.monotonic() < deadline:
            time.sleep(0.02)
        for name in ("blob", "job"):
            requests.delete(f"{self.urls[name]}/_control/faults", timeout=5).raise_for_status()
            requests.post(f"{self.urls[name]}/_control/reset-stats", timeout=5).raise_for_status()

    def cancel_remote(self, job_id: str) -> None:
        """End a deliberately slow job in JobService so it does not hold up later tests."""
        requests.delete(f"{self.urls['job']}/jobs/{job_id}", timeout=5)


class Api:
    """A user's HTTP calls, answered in-process (DRF's APIClient); responses are Django's."""

    def __init__(self) -> None:
        self.client = APIClient()

    def request(self, method: str, path: str, owner: Owner | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if owner is not None:
            headers.setdefault("Authorization", f"Bearer {owner.token}")
        return getattr(self.client, method)(path, headers=headers, **kwargs)

    def get(self, path: str, owner: Owner | None = None, **kwargs):
        return self.request("get", path, owner, **kwargs)

    def post(self, path: str, owner: Owner | None = None, **kwargs):
        return self.request("post", path, owner, **kwargs)

    def submit(
        self,
        owner: Owner,
        data: bytes = b"hello world",
        *,
        content_type: str = "application/octet-stream",
        **kwargs,
    ):
        """POST a raw body as the job's input; the response, whatever its status."""
        return self.post("/api/v1/job", owner, data=data, content_type=content_type, **kwargs)

    def status_of(self, owner: Owner, job_id: str, **kwargs):
        return self.get(f"/api/v1/job/{job_id}/status", owner, **kwargs)

    def output_of(self, owner: Owner, job_id: str, **kwargs):
        return self.get(f"/api/v1/job/{job_id}/output", owner, **kwargs)

    def cancel(self, owner: Owner, job_id: str, **kwargs):
        return self.post(f"/api/v1/job/{job_id}/cancel", owner, **kwargs)


def submit(api: Api, owner: Owner, data: bytes = b"hello world", **kwargs) -> dict:
    """POST a job that must be accepted; its document."""
    response = api.submit(owner, data, **kwargs)
    assert response.status_code == 202, response.content
    return response.json()


def body_of(response) -> bytes:
    """A response's body, streamed (the output) or not."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def wait_for_status(
    api: Api, owner: Owner, job_id: str, wanted: set[str], timeout: float = 30
) -> dict:
    """Run the worker's tasks and poll the status endpoint (which asks JobService about a
    SUBMITTED job) until the job reaches one of `wanted`; its document."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        run_tasks()
        dispatch_pass()
        response = api.status_of(owner, job_id)
        assert response.status_code == 200, response.content
        body = response.json()
        if body["status"] in wanted:
            return body
        time.sleep(0.05)
    raise AssertionError(
        f"job {job_id} still {body.get('status')} after {timeout}s, wanted {sorted(wanted)}"
    )
