"""Hostile and broken clients against the running stack, over raw sockets where an HTTP client
would not send the request: bodies cut off, uploads that stall, headers that never end.

Each test asserts the answer, what was stored (no job, no staged file, the Idempotency-Key free
again) and that the service kept serving everyone else. Bounded: at most 24 connections, each
with a socket timeout, closed at the end of its test. The rules themselves are tested in-process
in tests/jobs/api/test_uploads.py and tests/frontservice/test_request_body.py.
"""

import json
import select
import socket
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings

from jobs.models import IdempotencyKey, Job
from tests.support.stack import STALL_TIMEOUT

# Generous bounds on waiting for an answer; none of them is a performance assertion.
ANSWER_TIMEOUT = STALL_TIMEOUT + 15
# "Normal time" for /healthz or a small submit while stalled clients are open, on a loaded
# 2-core box: a few hundred milliseconds when nothing waits on the stalled clients, while any
# one thing that does (a thread, the process's accept loop) costs seconds per client, 15 s or
# more for twenty of them. Five times the same request's time without stalled clients, when the
# box is slow enough for that to be more.
NORMAL_TIME = 5.0


def _connect(stack) -> socket.socket:
    url = urlsplit(stack.api)
    return socket.create_connection((url.hostname, url.port), timeout=ANSWER_TIMEOUT)


def _head(owner, *lines: str) -> bytes:
    fields = [
        "POST /api/v1/job HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: {owner.headers['Authorization']}",
        "Content-Type: application/octet-stream",
        *lines,
    ]
    return ("\r\n".join(fields) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """The status and the JSON body of the one answer on this connection (read to its end)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if length is not None and len(body) >= length:
            break
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "the connection closed without an answer"
    return int(head.split(b" ")[1]), json.loads(body or b"{}")


def _wait_for_answers(sockets: list[socket.socket], count: int) -> None:
    """Until at least `count` of the sockets have an answer waiting, which is left unread."""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while len(select.select(sockets, [], [], 0.05)[0]) < count:
        assert time.monotonic() < deadline, f"fewer than {count} answers"


def _jobs_of(owner) -> int:
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub).count()


def _wait_for_no_staged_upload(timeout: float = ANSWER_TIMEOUT) -> None:
    """The API removes a partial upload when its read fails; nothing may stay behind."""
    tmp = Path(settings.STAGING_DIR) / "tmp"
    deadline = time.monotonic() + timeout
    while list(tmp.iterdir()):
        assert time.monotonic() < deadline, f"left in staging: {list(tmp.iterdir())}"
        time.sleep(0.05)


def _assert_serving(stack, owner) -> dict[str, float]:
    """/healthz and another owner's submit are answered (within a liveness bound); the seconds
    each took."""
    took = {}
    began = time.monotonic()
    assert requests.get(f"{stack.api}/healthz", timeout=10).status_code == 200
    took["healthz"] = time.monotonic() - began
    began = time.monotonic()
    response = requests.post(
        f"{stack.api}/api/v1/job", data=b"still served", headers=owner.headers, timeout=10
    )
    took["submit"] = time.monotonic() - began
    assert response.status_code == 202, response.text
    return took


def test_a_body_shorter_than_its_content_length_is_400_and_the_retry_makes_the_job(
    stack, alice, bob
):
    key = "cut-off-then-retried"
    with _connect(stack) as sock:
        sock.sendall(_head(alice, "Content-Length: 100", f"Idempotency-Key: {key}"))
        sock.sendall(b"x" * 40)
        sock.shutdown(socket.SHUT_WR)  # the client's side ends; its answer can still come

        status, problem = _answer(sock)

    assert (status, problem["code"]) == (400, "incomplete_body")
    assert _jobs_of(alice) == 0
    assert not IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, key=key).exists()
    _wait_for_no_staged_upload()

    retried = requests.post(
        f"{stack.api}/api/v1/job",
        data=b"x" * 100,
        headers={**alice.headers, "Idempotency-Key": key},
        timeout=30,
    )

    assert retried.status_code == 202, retried.text
    assert Job.objects.get(pk=retried.json()["id"]).input_size == 100
    _assert_serving(stack, bob)


def test_a_dropped_connection_mid_body_leaves_nothing(stack, alice, bob):
    with _connect(stack) as sock:
        sock.sendall(_head(alice, "Content-Length: 100"))
        sock.sendall(b"x" * 40)
    # Closed without waiting for an answer: the API finds out when its read ends.

    _wait_for_no_staged_upload()
    assert _jobs_of(alice) == 0
    _assert_serving(stack, bob)


def test_a_chunked_body_cut_off_before_its_last_chunk_is_400(stack, alice, bob):
    with _connect(stack) as sock:
        sock.sendall(_head(alice, "Transfer-Encoding: chunked"))
        sock.sendall(b"10\r\n" + b"y" * 16 + b"\r\n")  # one chunk, and never the last one
        sock.shutdown(socket.SHUT_WR)

        status, problem = _answer(sock)

    assert (status, problem["code"]) == (400, "incomplete_body")
    assert _jobs_of(alice) == 0
    _wait_for_no_staged_upload()
    _assert_serving(stack, bob)


def test_a_body_that_stops_coming_is_408_after_the_idle_timeout(stack, alice, bob):
    with _connect(stack) as sock:
        sock.sendall(_head(alice, "Content-Length: 1000"))
        sock.sendall(b"z")  # then nothing, connection open

        status, problem = _answer(sock)

    assert (status, problem["code"]) == (408, "upload_timeout")
    assert _jobs_of(alice) == 0
    _wait_for_no_staged_upload()
    _assert_serving(stack, bob)


def test_headers_that_never_end_lose_their_connection_after_the_idle_timeout(stack, bob):
    with _connect(stack) as sock:
        sock.sendall(b"POST /api/v1/job HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no blank line

        # gunicorn gives up on the read and closes: the client sees the end of the stream.
        assert sock.recv(65536) == b""

    _assert_serving(stack, bob)
    # A slow client is not our error: one line, no traceback.
    log = stack.processes["api"].log_path.read_text()
    assert "Socket error processing request" not in log
    assert "closed a connection that sent nothing for UPLOAD_IDLE_TIMEOUT" in log


def test_24_stalled_uploads_of_one_owner_leave_the_api_serving_others(stack, alice, bob):
    without_stalled = _assert_serving(stack, bob)
    with ExitStack() as stalled:
        sockets = []
        for _ in range(24):
            sock = stalled.enter_context(_connect(stack))
            sock.sendall(_head(alice, "Content-Length: 1000"))
            sock.sendall(b"s")
            sockets.append(sock)

        # Each API process reads at most UPLOADS_PER_OWNER of them and refuses the rest at once.
        # Once those refusals are sent (seen on the sockets, not read), while all 24 are open,
        # neither read nor closed by their client (as a hostile one would), the API answers the
        # health check and another owner in normal time.
        _wait_for_answers(sockets, 24 - 2 * settings.UPLOADS_PER_OWNER)
        with_stalled = [_assert_serving(stack, bob) for _ in range(3)]

        answers = [_answer(sock) for sock in sockets]

    for kind, baseline in without_stalled.items():
        limit = max(NORMAL_TIME, 5 * baseline)
        took = [round(each[kind], 2) for each in with_stalled]
        assert max(took) < limit, f"{kind}: {took} s with stalled uploads, {baseline:.2f} s without"

    codes = sorted(problem["code"] for _, problem in answers)
    # Each API process reads at most UPLOADS_PER_OWNER of one owner's bodies at once; the rest
    # are refused before their body, and the ones read end at the idle timeout.
    assert set(codes) <= {"too_many_uploads", "upload_timeout"}
    assert codes.count("too_many_uploads") >= 24 - 2 * settings.UPLOADS_PER_OWNER
    assert all(
        status == 429 for status, problem in answers if problem["code"] == "too_many_uploads"
    )
    assert _jobs_of(alice) == 0
    _wait_for_no_staged_upload()
    # Once the stalled ones are gone, alice is served again.
    _assert_serving(stack, alice)


def test_an_unknown_format_without_a_token_is_a_problem_not_a_500(stack, bob):
    for path in ("/api/v1/job?format=x", "/api/schema/?format=x"):
        response = requests.get(f"{stack.api}{path}", timeout=10)

        assert response.status_code == 404, (path, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
    _assert_serving(stack, bob)


def test_owner_claims_with_control_characters_are_refused(stack, tenant, bob):
    from jobs.api.tokens import issue_token

    for tenant_id, sub in ((f"{tenant}\0x", "y"), (tenant, "x\0y"), (tenant, "x\ny")):
        token = issue_token(tenant_id=tenant_id, sub=sub)
        response = requests.post(
            f"{stack.api}/api/v1/job",
            data=b"input",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_token"
    assert not Job.objects.filter(tenant_id__startswith=tenant, sub__contains="\0").exists()
    _assert_serving(stack, bob)


def test_a_callback_refusal_does_not_say_what_a_name_resolves_to(stack, alice):
    # "localhost" resolves to loopback, allowed only as 127.0.0.1/32 in the test stack; ::1 is not.
    response = requests.post(
        f"{stack.api}/api/v1/job",
        params={"callback_url": "http://ip6-localhost:9/hook"},
        data=b"input",
        headers=alice.headers,
        timeout=10,
    )

    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "invalid_callback_url"
    assert "::1" not in problem["detail"] and "loopback" not in problem["detail"]
    assert _jobs_of(alice) == 0


def test_admin_login_guessing_is_refused_after_the_failure_limit(stack):
    # This locks 127.0.0.1 out of the admin for the cool-off; no other end-to-end test logs in.
    session = requests.Session()
    login = f"{stack.api}/admin/login/?next=/admin/"
    username = f"nobody-{time.monotonic_ns()}"
    statuses = []
    for attempt in range(8):
        session.get(login, timeout=10)  # the CSRF cookie
        response = session.post(
            login,
            data={
                "username": username,
                "password": f"guess-{attempt}",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            timeout=10,
            allow_redirects=False,
        )
        statuses.append(response.status_code)

    limit = 5  # ADMIN_LOGIN_FAILURE_LIMIT's default, which the stack keeps
    assert statuses[: limit - 1] == [200] * (limit - 1)  # the form again, "wrong password"
    assert set(statuses[limit:]) == {429}
    assert response.json()["code"] == "too_many_login_failures"
