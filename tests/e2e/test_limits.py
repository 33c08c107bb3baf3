"""Limits that depend on gunicorn: the input size of a chunked body (which gunicorn decodes off
the socket), and rate counts shared by the API's worker processes: in MongoDB, and in Redis on
the Redis pass (CACHE_URL follows REDIS_URL there).

These run against an API process of their own with small limits (LIMITS), on the session's
database, broker and reference services, so the rest of the suite keeps the defaults. The rates
and the cap on active jobs are tested in-process in tests/jobs/api/test_throttling.py and
test_limits.py; a refused declared length in tests/jobs/api/test_submit.py and
tests/e2e/test_upload.py.
"""

import http.client
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from jobs.api.throttling import LEASE_SHARE
from jobs.models import Job
from jobs.states import Status
from tests.support.processes import free_port
from tests.support.stack import Stack, api_argv

MAX_INPUT_BYTES = 64 * 1024
READ_LIMIT = 5
# Large enough for each process to lease counts ahead, two at a time (jobs/api/throttling.py:
# a lease is at most 1/LEASE_SHARE of the limit).
SUBMIT_LIMIT = 2 * LEASE_SHARE
LIMITS = {
    "MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
    # Per day: the window only turns over at midnight UTC, never in the middle of a test.
    "RATE_LIMIT_READ": f"{READ_LIMIT}/day",
    "RATE_LIMIT_SUBMIT": f"{SUBMIT_LIMIT}/day",
}
# The access log names the gunicorn worker (its pid) that served each request.
ACCESS_LOG_FORMAT = "served %(p)s %(U)s %(s)s"


@pytest.fixture(scope="module")
def limited(stack):
    port = free_port()
    own = Stack(
        env={**stack.env, **LIMITS},
        data_dir=stack.data_dir,
        urls={**stack.urls, "api": f"http://127.0.0.1:{port}"},
    )
    own.argv = {
        "api": [
            *api_argv(port),
            "--access-logfile",
            "-",
            "--access-logformat",
            ACCESS_LOG_FORMAT,
        ]
    }
    own.start("api")
    try:
        yield own
    finally:
        own.stop("api")


@pytest.fixture
def make_jobs():
    """Jobs written straight to the database (never enqueued), removed after the test, so that
    jobs left in CREATED/STORED/SUBMITTED do not hold up later tests waiting for a quiet stack."""
    made = []

    def make(owner, *statuses: str) -> list[Job]:
        jobs = [
            Job.objects.create(tenant_id=owner.tenant_id, sub=owner.sub, status=s) for s in statuses
        ]
        made.extend(jobs)
        return jobs

    yield make
    Job.objects.filter(pk__in=[job.pk for job in made]).delete()


def _jobs_of(owner) -> int:
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub).count()


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(limited, alice):
    url = urlsplit(limited.api)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.putrequest("POST", "/api/v1/job")
    connection.putheader("Authorization", alice.headers["Authorization"])
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b"x" * 8192
    sent = 0
    while sent <= MAX_INPUT_BYTES + 16 * 1024:
        connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sent += len(chunk)
    # The body never ends (no last chunk): the answer must come anyway.
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    assert b'"input_too_large"' in body
    assert _jobs_of(alice) == 0
    assert _staging_tmp_files() == []


def test_a_chunked_body_within_the_limit_is_accepted(limited, alice):
    def chunks():
        for _ in range(MAX_INPUT_BYTES // 8192):
            yield b"y" * 8192

    response = requests.post(
        f"{limited.api}/api/v1/job", data=chunks(), headers=alice.headers, timeout=30
    )

    assert response.status_code == 202, response.text
    assert Job.objects.get(pk=response.json()["id"]).input_size == MAX_INPUT_BYTES


@pytest.mark.brokers
def test_the_counts_are_shared_by_the_apis_worker_processes(limited, alice, make_jobs):
    (job,) = make_jobs(alice, Status.EXECUTION_COMPLETED)
    path = f"/api/v1/job/{job.id}/status"
    headers = alice.headers
    statuses: list[int] = []
    served: dict[str, list[int]] = {}
    # Each request on a new connection (no session), so gunicorn's two workers both accept
    # some; more are sent until the access log shows both did.
    while len(served) < 2 and len(statuses) < 200:
        for _ in range(20):
            response = requests.get(f"{limited.api}{path}", headers=headers, timeout=30)
            statuses.append(response.status_code)
        served = _served_by(limited, path, expected=len(statuses))

    assert len(served) == 2, f"one worker served all {len(statuses)} requests"
    # Per-process counters would allow up to READ_LIMIT in each worker.
    assert statuses.count(200) == READ_LIMIT
    assert statuses.count(429) == len(statuses) - READ_LIMIT


@pytest.mark.brokers
def test_counts_leased_ahead_by_each_process_never_pass_the_limit(limited, alice):
    # A cancel counts against the submit rate before its job is looked up: of an unknown job,
    # an admitted one is 404 and a refused one 429, and nothing else is touched.
    path = f"/api/v1/job/{uuid.uuid4()}/cancel"
    statuses: list[int] = []
    served: dict[str, list[int]] = {}
    while len(statuses) < SUBMIT_LIMIT + 40 or (len(served) < 2 and len(statuses) < 400):
        for _ in range(20):
            response = requests.post(f"{limited.api}{path}", headers=alice.headers, timeout=30)
            statuses.append(response.status_code)
        served = _served_by(limited, path, expected=len(statuses))

    assert len(served) == 2, f"one worker served all {len(statuses)} requests"
    assert set(statuses) == {404, 429}
    admitted = statuses.count(404)
    # Each worker took leases of two once busy; what one leased and did not spend before the
    # count ran out (at most one) is lost, and nothing more is ever admitted.
    assert SUBMIT_LIMIT - 2 <= admitted <= SUBMIT_LIMIT
    # The last requests are all refused: the shared count has reached the limit.
    assert statuses[-20:] == [429] * 20


def _served_by(stack, path: str, *, expected: int) -> dict[str, list[int]]:
    """{worker pid: statuses it answered} for `path`, from the API's access log."""
    pattern = re.compile(rf"served <(\d+)> {re.escape(path)} (\d+)")
    deadline = time.monotonic() + 10
    while True:
        lines = pattern.findall(stack.processes["api"].log_path.read_text())
        if len(lines) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # a worker logs a request just after answering it
    served: dict[str, list[int]] = {}
    for pid, status in lines:
        served.setdefault(pid, []).append(int(status))
    return served
