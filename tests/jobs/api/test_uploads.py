"""jobs/api/uploads.py: a body is staged only whole, and an owner (and a process) reads only a
few bodies at once. The same attacks over real sockets, under gunicorn, are in
tests/e2e/test_hostile_clients.py."""

import io
from contextlib import ExitStack

from gunicorn.http.errors import NoMoreData

from jobs.api.tokens import Principal
from jobs.api.uploads import upload_slot
from jobs.models import IdempotencyKey, Job
from tests.support.jobs_api import assert_problem, staging_tmp_files, unread_body

FULL = b"x" * 100


class CutOff:
    """A body stream that delivers `data`, then fails as the server's reader does."""

    def __init__(self, data: bytes, error: BaseException):
        self._data = io.BytesIO(data)
        self._error = error

    def read(self, size=-1):
        chunk = self._data.read(size)
        if not chunk:
            raise self._error
        return chunk

    readline = read


def _jobs_of(owner) -> int:
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub).count()


def _principal(owner) -> Principal:
    return Principal(tenant_id=owner.tenant_id, sub=owner.sub)


def test_a_body_shorter_than_its_content_length_is_400_and_never_a_job(api, alice):
    # What a server that ends the stream early hands over: 40 of the 100 bytes declared.
    response = api.submit(alice, b"", CONTENT_LENGTH="100", **{"wsgi.input": io.BytesIO(FULL[:40])})

    assert_problem(response, 400, "incomplete_body")
    assert _jobs_of(alice) == 0
    assert staging_tmp_files() == []


def test_the_retry_with_the_same_key_and_the_whole_body_makes_the_job(api, alice):
    key = {"HTTP_IDEMPOTENCY_KEY": "retry-after-a-cut-off"}
    cut = api.submit(
        alice, b"", CONTENT_LENGTH="100", **{"wsgi.input": io.BytesIO(FULL[:40])}, **key
    )
    assert_problem(cut, 400, "incomplete_body")
    assert not IdempotencyKey.objects.filter(key="retry-after-a-cut-off").exists()

    retried = api.submit(alice, FULL, **key)

    assert retried.status_code == 202, retried.content
    assert Job.objects.get(pk=retried.json()["id"]).input_size == len(FULL)


def test_a_chunked_body_cut_off_before_its_last_chunk_is_400(api, alice):
    # gunicorn's chunked reader raises NoMoreData when the connection ends mid-body.
    response = api.submit(
        alice,
        b"",
        **{"wsgi.input": CutOff(FULL[:40], NoMoreData(b"")), "wsgi.input_terminated": True},
    )

    assert_problem(response, 400, "incomplete_body")
    assert _jobs_of(alice) == 0
    assert staging_tmp_files() == []


def test_a_body_that_stops_coming_is_408_and_nothing_is_kept(api, alice):
    # The socket's idle timeout (SO_RCVTIMEO) ends a blocking read with EAGAIN.
    response = api.submit(
        alice,
        b"",
        CONTENT_LENGTH="100",
        **{"wsgi.input": CutOff(FULL[:40], BlockingIOError(11, "timed out"))},
    )

    assert_problem(response, 408, "upload_timeout")
    assert _jobs_of(alice) == 0
    assert staging_tmp_files() == []


def test_a_multipart_body_cut_off_is_400(api, alice):
    body = (
        b'--B\r\nContent-Disposition: form-data; name="input"; filename="in.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + FULL + b"\r\n--B--\r\n"
    )
    response = api.submit(
        alice,
        b"",
        content_type="multipart/form-data; boundary=B",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": CutOff(body[:120], ConnectionResetError(104, "reset"))},
    )

    assert_problem(response, 400, "incomplete_body")
    assert _jobs_of(alice) == 0


def test_a_malformed_content_length_is_400(api, alice):
    response = api.submit(alice, b"abc", CONTENT_LENGTH="3, 3")

    assert_problem(response, 400, "invalid_content_length")


def test_an_owner_at_its_upload_cap_is_429_before_the_body_is_read(api, alice, bob, settings):
    with ExitStack() as held:
        for _ in range(settings.UPLOADS_PER_OWNER):
            held.enter_context(upload_slot(owner=_principal(alice)))

        refused = api.submit(alice, b"", **unread_body(100))
        # Another owner still has the process's remaining slots.
        accepted = api.submit(bob, b"bob's input")

    assert_problem(refused, 429, "too_many_uploads")
    assert int(refused["Retry-After"]) > 0
    assert accepted.status_code == 202, accepted.content
    assert _jobs_of(alice) == 0
    # The slots are given back: alice uploads again once hers have ended.
    assert api.submit(alice, b"alice's input").status_code == 202


def test_the_process_at_its_upload_cap_is_429_for_every_owner(api, alice, bob, settings):
    settings.UPLOADS_PER_PROCESS = 2
    settings.UPLOADS_PER_OWNER = 1
    with ExitStack() as held:
        held.enter_context(upload_slot(owner=_principal(alice)))
        held.enter_context(upload_slot(owner=Principal(tenant_id="other", sub="carol")))

        refused = api.submit(bob, b"", **unread_body(100))

    assert_problem(refused, 429, "too_many_uploads")
    assert _jobs_of(bob) == 0
