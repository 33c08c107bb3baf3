"""Limits: the input size on a chunked body, per-owner request rates, the cap on active jobs.

These run against an API process of their own with small limits (LIMITS), on the session's
database, broker and reference services, so the rest of the suite keeps the defaults. A refused
declared length is tested in test_submit.py.
"""

import http.client
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from jobs.models import Job
from jobs.states import Status
from tests.conftest import Stack, api_argv
from tests.support.processes import free_port

MAX_INPUT_BYTES = 64 * 1024
SUBMIT_LIMIT = 3
READ_LIMIT = 5
ACTIVE_CAP = 4
LIMITS = {
    "MAX_INPUT_BYTES": str(MAX_INPUT_BYTES),
    # Per day: the window only turns over at midnight UTC, never in the middle of a test.
    "RATE_LIMIT_SUBMIT": f"{SUBMIT_LIMIT}/day",
    "RATE_LIMIT_READ": f"{READ_LIMIT}/day",
    "MAX_ACTIVE_JOBS_PER_OWNER": str(ACTIVE_CAP),
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


def _post(stack, owner, data: bytes = b"some input", **headers) -> requests.Response:
    return requests.post(
        f"{stack.api}/api/v1/job", data=data, headers={**owner.headers, **headers}, timeout=30
    )


def _get(stack, owner, job_id, what: str = "status") -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/job/{job_id}/{what}", headers=owner.headers, timeout=30
    )


def _jobs_of(owner) -> int:
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub).count()


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def _assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


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


def test_posts_past_the_submit_rate_are_refused_per_owner(limited, alice, bob, mallory):
    answers = [_post(limited, alice, f"input {n}".encode()) for n in range(SUBMIT_LIMIT + 1)]

    assert [answer.status_code for answer in answers] == [202] * SUBMIT_LIMIT + [429]
    refused = answers[-1]
    _assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 24 * 3600
    # Refused before the body was read: no job, nothing staged.
    assert _jobs_of(alice) == SUBMIT_LIMIT
    assert _staging_tmp_files() == []
    # The owner is the pair (tenant, sub): a colleague and a namesake elsewhere are unaffected.
    assert _post(limited, bob).status_code == 202
    assert _post(limited, mallory).status_code == 202


def test_reads_past_the_read_rate_are_refused_per_owner(limited, alice, bob, make_jobs):
    (job,) = make_jobs(alice, Status.EXECUTION_COMPLETED)
    (bobs_job,) = make_jobs(bob, Status.EXECUTION_COMPLETED)

    answers = [_get(limited, alice, job.id) for _ in range(READ_LIMIT + 1)]

    assert [answer.status_code for answer in answers] == [200] * READ_LIMIT + [429]
    _assert_problem(answers[-1], 429, "rate_limited")
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 24 * 3600
    # Status and output reads count against one rate.
    _assert_problem(_get(limited, alice, job.id, "output"), 429, "rate_limited")
    assert _get(limited, bob, bobs_job.id).status_code == 200
    # Reads and submissions are counted apart.
    assert _post(limited, alice).status_code == 202


def test_cancels_count_against_the_submit_rate(limited, alice, make_jobs):
    jobs = make_jobs(alice, *[Status.CREATED] * SUBMIT_LIMIT)
    assert _post(limited, alice).status_code == 202

    answers = [
        requests.post(
            f"{limited.api}/api/v1/job/{job.id}/cancel", headers=alice.headers, timeout=30
        )
        for job in jobs
    ]

    # One POST and SUBMIT_LIMIT - 1 cancels fill the rate; the last cancel is refused.
    assert [answer.status_code for answer in answers] == [200] * (SUBMIT_LIMIT - 1) + [429]
    _assert_problem(answers[-1], 429, "rate_limited")
    assert Job.objects.get(pk=jobs[-1].pk).status == Status.CREATED
    # Reads are counted apart.
    assert _get(limited, alice, jobs[0].id).json()["status"] == Status.CANCELLED


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


def test_an_owner_at_the_cap_of_active_jobs_is_refused_before_the_body_is_read(
    limited, alice, make_jobs
):
    active = make_jobs(alice, Status.CREATED, Status.STORED, Status.SUBMITTED, Status.CREATED)
    make_jobs(alice, Status.EXECUTION_COMPLETED, Status.STORED_ERROR)  # final: not counted
    url = urlsplit(limited.api)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.putrequest("POST", "/api/v1/job")
    connection.putheader("Authorization", alice.headers["Authorization"])
    connection.putheader("Content-Length", "1000")
    connection.endheaders()
    # Not a byte of the body is sent: the answer must come anyway.
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == 429
    assert response.getheader("Content-Type") == "application/problem+json"
    assert b'"too_many_active_jobs"' in body
    assert response.getheader("Retry-After") == "30"
    assert _jobs_of(alice) == len(active) + 2
    assert _staging_tmp_files() == []

    # One job final, and there is room again.
    Job.objects.filter(pk=active[0].pk).update(status=Status.EXECUTION_COMPLETED)
    assert _post(limited, alice).status_code == 202


def test_a_repeat_with_its_idempotency_key_is_answered_at_the_cap(limited, alice, make_jobs):
    first = _post(limited, alice, b"once", **{"Idempotency-Key": "limits-1"})
    assert first.status_code == 202
    make_jobs(alice, *[Status.CREATED] * ACTIVE_CAP)

    refused = _post(limited, alice, b"another")
    repeat = _post(limited, alice, b"once", **{"Idempotency-Key": "limits-1"})

    _assert_problem(refused, 429, "too_many_active_jobs")
    assert repeat.status_code == 202
    assert repeat.json()["id"] == first.json()["id"]
