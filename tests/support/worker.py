"""Helpers for in-process tests of the worker tier: jobs put straight into a state, what the
reference services got for a job, and a worker's task run in a thread while the test acts.
"""

import threading
import time

import requests
from django.db import connections

from jobs.models import Job
from tests.support.api import Owner


def a_job(owner: Owner, status: str, **fields) -> Job:
    """A job put straight into a status, with no task enqueued for it."""
    return Job.objects.create(tenant_id=owner.tenant_id, sub=owner.sub, status=status, **fields)


def transitions(job_id) -> list[tuple[str, str]]:
    return [(entry["from"], entry["to"]) for entry in Job.objects.get(pk=job_id).history]


def requests_for(services, service: str, job_id) -> dict:
    """{method: count} of the API requests the service got for this id."""
    return services.stats(service)["by_id"].get(str(job_id), {})


def remote_job(services, job_id) -> requests.Response:
    return requests.get(f"{services.urls['job']}/jobs/{job_id}", timeout=10)


def blob(services, job_id) -> requests.Response:
    return requests.get(f"{services.urls['blob']}/blobs/{job_id}", timeout=10)


def wait_until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.02)


class Background:
    """`target()` run in a thread of its own (a worker busy with a task while the test, in the
    main thread, plays the user); `join()` returns its result or raises what it raised.

    The thread has its own database connection, like a worker process, closed when it ends.
    """

    def __init__(self, target):
        self.result = None
        self.error: BaseException | None = None

        def run():
            try:
                self.result = target()
            except BaseException as exc:  # re-raised in the test's thread by join()
                self.error = exc
            finally:
                connections.close_all()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"still running after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result
