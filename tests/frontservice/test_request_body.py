"""frontservice/request_body.py: a body that ends before its Content-Length raises instead of
ending early, and the errors of a body failing to arrive are told apart from ours."""

import io
import json
import socket
from wsgiref.util import setup_testing_defaults

import pytest
from django.http import UnreadablePostError
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.errors import ChunkMissingTerminator, NoMoreData
from gunicorn.http.unreader import SocketUnreader

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


def _read_all_into(environ, start_response):
    buffer = bytearray(7)
    body = bytearray()
    while received := environ["wsgi.input"].readinto(buffer):
        body += buffer[:received]
    start_response("200 OK", [])
    return [bytes(body)]


@pytest.fixture
def connection():
    server, client = socket.socketpair()
    server.settimeout(5)
    yield server, client
    server.close()
    client.close()


def _gunicorn_environ(sock, length: int, read_ahead: bytes) -> tuple[dict, Body]:
    """The body as gunicorn hands it over, with `read_ahead` already read with the headers."""
    unreader = SocketUnreader(sock)
    unreader.unread(read_ahead)
    body = Body(LengthReader(unreader, length))
    environ = {"CONTENT_LENGTH": str(length), "wsgi.input": body, "gunicorn.socket": sock}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = body
    return environ, body


def test_readinto_takes_what_gunicorn_read_ahead_then_the_rest_from_the_socket(connection):
    server, client = connection
    environ, body = _gunicorn_environ(server, 30, read_ahead=b"0123456789")
    # The rest of the body, then a pipelined request that must stay for gunicorn to parse.
    client.sendall(b"abcdefghijklmnopqrst" + b"GET /next HTTP/1.1\r\n")

    answer = strict_body(_read_all_into)(environ, lambda *a: None)

    assert answer == [b"0123456789abcdefghijklmnopqrst"]
    assert body.reader.length == 0 and not body.failed
    assert body.reader.unreader.read() == b"GET /next HTTP/1.1\r\n"


def test_readinto_of_a_body_cut_off_raises_and_marks_the_connection_unusable(connection):
    server, client = connection
    environ, body = _gunicorn_environ(server, 30, read_ahead=b"0123")
    client.sendall(b"456789")
    client.close()

    with pytest.raises(IncompleteBody):
        strict_body(_read_all_into)(environ, lambda *a: None)
    assert body.failed


def test_readinto_of_another_server_s_stream_stops_at_the_content_length():
    environ = _environ(b"x" * 10 + b"beyond the body", 10)

    assert strict_body(_read_all_into)(environ, lambda *a: None) == [b"x" * 10]


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
