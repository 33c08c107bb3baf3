"""Helpers for the in-process tests of the job API: problem documents, the staging area, a
request body that must never be read, and requests sent from several threads at once."""

import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connections


def staging_tmp_files() -> list[Path]:
    """Inputs being received: a refused request must leave none behind."""
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def assert_problem(response, status_code: int, code: str) -> None:
    """An RFC 9457 problem document with our stable code."""
    body = response.content.decode(errors="replace")
    assert response.status_code == status_code, body
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


class NeverRead:
    """A request body stream that raises if the server reads a byte of it (the request then
    ends in a 500, not in the answer the test expects)."""

    def read(self, *args, **kwargs):
        raise AssertionError("the request body was read")

    readline = read


def unread_body(length: int) -> dict:
    """WSGI environ for a request that declares `length` bytes of body the view must not read
    (what a server answering before the body arrives sees)."""
    return {"CONTENT_LENGTH": str(length), "wsgi.input": NeverRead()}


def in_threads[T](count: int, call: Callable[[], T]) -> list[T]:
    """`call()` in `count` threads released at once; their results (an exception is raised).

    Each thread has its own database connection, closed when it ends.
    """
    barrier = threading.Barrier(count)
    results: list[T] = []
    failures: list[BaseException] = []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(call())
        except BaseException as exc:  # reported in the test's thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if failures:
        raise failures[0]
    return results


class JobMaker:
    """Jobs written straight to the database (never enqueued), in the statuses a test needs."""

    def __init__(self) -> None:
        self.made: list = []

    def __call__(self, owner, *statuses: str) -> list:
        from jobs.models import Job

        jobs = [
            Job.objects.create(tenant_id=owner.tenant_id, sub=owner.sub, status=status)
            for status in statuses
        ]
        self.made.extend(jobs)
        return jobs

    def remove(self) -> None:
        """Remove them, so jobs left CREATED/STORED/SUBMITTED never look in flight to a later
        test waiting for a quiet stack."""
        from jobs.models import Job

        Job.objects.filter(pk__in=[job.pk for job in self.made]).delete()


class Background:
    """`call()` running in a thread of its own (with its own database connection, closed when
    it ends), e.g. a request held open while the test moves the job on."""

    def __init__(self, call: Callable[[], object]) -> None:
        self._result: list = []
        self._failure: list[BaseException] = []

        def run():
            try:
                self._result.append(call())
            except BaseException as exc:  # reported by result()
                self._failure.append(exc)
            finally:
                connections.close_all()

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def result(self, timeout: float = 60):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout}s"
        if self._failure:
            raise self._failure[0]
        return self._result[0]
