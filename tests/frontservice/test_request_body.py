"""frontservice/request_body.py: a body that ends before its Content-Length raises instead of
ending early, and the errors of a body failing to arrive are told apart from ours."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.http import UnreadablePostError
from gunicorn.http.errors import ChunkMissingTerminator, NoMoreData

from frontservice.request_body import IncompleteBody, client_read_failure, strict_body
from frontservice.wsgi import application
from jobs.models import Job


def _reader(environ, start_response):
    body = b""
    while chunk := environ["wsgi.input"].read(3):
        body += chunk
        if len(body) >= int(environ["CONTENT_LENGTH"]):
            break
    start_response("200 OK", [])
    return [body]


def _environ(body: bytes, length: int) -> dict:
    environ = {"CONTENT_LENGTH": str(length), "wsgi.input": io.BytesIO(body)}
    setup_testing_defaults(environ)
    return environ


def test_a_whole_body_reads_as_it_is():
    assert strict_body(_reader)(_environ(b"x" * 10, 10), lambda *a: None) == [b"x" * 10]


def test_a_body_shorter_than_its_content_length_raises():
    with pytest.raises(IncompleteBody):
        strict_body(_reader)(_environ(b"x" * 4, 10), lambda *a: None)


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (IncompleteBody("short"), "incomplete"),
        (NoMoreData(b""), "incomplete"),
        (ChunkMissingTerminator(b""), "incomplete"),
        (ConnectionResetError(104, "reset"), "incomplete"),
        (BlockingIOError(11, "idle"), "timeout"),
        (TimeoutError(), "timeout"),
        (OSError(28, "No space left on device"), None),  # ours, not the client's
        (ValueError("bug"), None),
    ],
)
def test_the_client_read_failures_are_told_apart_from_ours(error, failure):
    assert client_read_failure(error) == failure
    wrapped = UnreadablePostError("wrapped")
    wrapped.__cause__ = error
    if failure is not None:
        assert client_read_failure(wrapped) == failure


def test_the_service_answers_a_cut_off_multipart_body_with_400(alice, db):
    # Django's multipart parser reads through the wrapper: the whole WSGI application.
    body = (
        b'--B\r\nContent-Disposition: form-data; name="input"; filename="in.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + b"y" * 100 + b"\r\n--B--\r\n"
    )
    environ = _environ(body[:-9], len(body))
    environ.update(
        REQUEST_METHOD="POST",
        PATH_INFO="/api/v1/job",
        CONTENT_TYPE="multipart/form-data; boundary=B",
        HTTP_AUTHORIZATION=f"Bearer {alice.token}",
        SERVER_NAME="127.0.0.1",
        HTTP_HOST="127.0.0.1",
    )
    answered = {}

    chunks = application(environ, lambda status, headers: answered.update(status=status))

    assert answered["status"].startswith("400")
    assert json.loads(b"".join(chunks))["code"] == "incomplete_body"
    assert not Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
