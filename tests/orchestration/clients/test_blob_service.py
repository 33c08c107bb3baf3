"""blob_service client, plus the shared session/error plumbing, mocked at the HTTP boundary."""

import io
import os
import pickle
from datetime import UTC, datetime

import pytest
import requests
import responses

from frontservice.downstream import DownstreamError
from orchestration.clients import http
from orchestration.clients.blob_service import (
    BlobNotFound,
    RangeNotSatisfiable,
    StoredBlob,
    delete_blob,
    open_blob,
    put_blob,
)
from orchestration.clients.http import parse_retry_after

BLOB_URL = "http://blobservice.test/blobs/blob-1"


@pytest.fixture(autouse=True)
def downstream_settings(settings):
    # Trailing slash on purpose: the client must not produce "//blobs".
    settings.BLOBSERVICE_URL = "http://blobservice.test/"
    settings.DOWNSTREAM_CONNECT_TIMEOUT = 1.5
    settings.DOWNSTREAM_READ_TIMEOUT = 9.0


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def upload(tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(b"a,b\n1,2\n")
    return path


def stored(size=8):
    return {"id": "blob-1", "size": size, "content_type": "text/csv"}


# put_blob: success


def test_put_blob_streams_the_file_with_its_content_type(mocked, upload):
    mocked.put(BLOB_URL, json=stored(), status=201)

    result = put_blob("blob-1", upload, content_type="text/csv")

    assert result == StoredBlob(id="blob-1", size=8, content_type="text/csv")
    (call,) = mocked.calls
    assert call.request.method == "PUT"
    assert call.request.url == BLOB_URL
    assert call.request.body == b"a,b\n1,2\n"
    assert call.request.headers["Content-Type"] == "text/csv"
    assert call.request.headers["Content-Length"] == "8"
    assert "Transfer-Encoding" not in call.request.headers


def test_put_blob_uses_the_configured_connect_and_read_timeouts(mocked, upload):
    mocked.put(BLOB_URL, json=stored(), status=201)

    put_blob("blob-1", upload, content_type="text/csv")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 9.0)


def test_timeouts_are_read_from_settings_at_call_time(mocked, upload, settings):
    mocked.put(BLOB_URL, json=stored(), status=200)
    settings.DOWNSTREAM_CONNECT_TIMEOUT = 0.25
    settings.DOWNSTREAM_READ_TIMEOUT = 42

    put_blob("blob-1", upload, content_type="text/csv")

    assert mocked.calls[0].request.req_kwargs["timeout"] == (0.25, 42.0)


def test_put_blob_accepts_a_string_path_and_an_overwrite(mocked, upload):
    mocked.put(BLOB_URL, json=stored(), status=200)

    assert put_blob("blob-1", str(upload), content_type="text/csv").size == 8


def test_put_blob_sends_an_empty_file_with_a_zero_content_length(mocked, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    mocked.put(BLOB_URL, json={"id": "blob-1", "size": 0, "content_type": "x/y"}, status=201)

    assert put_blob("blob-1", empty, content_type="x/y").size == 0
    headers = mocked.calls[0].request.headers
    assert headers["Content-Length"] == "0"
    assert "Transfer-Encoding" not in headers


def test_put_blob_reopens_the_file_on_each_call_so_a_retry_sends_it_whole(mocked, upload):
    mocked.put(BLOB_URL, status=503)
    mocked.put(BLOB_URL, json=stored(), status=201)

    with pytest.raises(DownstreamError):
        put_blob("blob-1", upload, content_type="text/csv")
    put_blob("blob-1", upload, content_type="text/csv")

    assert [call.request.body for call in mocked.calls] == [b"a,b\n1,2\n"] * 2


def test_put_blob_escapes_the_blob_id_as_a_single_path_segment(mocked, upload):
    mocked.put("http://blobservice.test/blobs/a%2Fb%20c", json=stored(), status=201)

    put_blob("a/b c", upload, content_type="text/csv")


@pytest.mark.parametrize("blob_id", ["", ".", ".."])
def test_put_blob_refuses_ids_that_would_leave_the_blob_path(blob_id, upload):
    with pytest.raises(ValueError):
        put_blob(blob_id, upload, content_type="text/csv")


# put_blob: failures


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectionError("connection refused"),
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
    ],
    ids=["connection-error", "connect-timeout", "read-timeout"],
)
def test_put_blob_transport_failures_are_retryable(mocked, upload, exc):
    mocked.put(BLOB_URL, body=exc)

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    error = caught.value
    assert error.service == "blobservice"
    assert error.retryable is True
    assert error.status_code is None
    assert type(exc).__name__ in error.message


def test_put_blob_invalid_request_errors_from_requests_are_not_retryable(mocked, upload):
    mocked.put(BLOB_URL, body=requests.exceptions.InvalidHeader("bad header"))

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert caught.value.retryable is False


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_put_blob_server_errors_are_retryable(mocked, upload, status):
    mocked.put(BLOB_URL, body="<html>oops</html>", status=status)

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert caught.value.retryable is True
    assert caught.value.status_code == status
    assert caught.value.retry_after is None


def test_put_blob_429_is_retryable_after_the_advertised_delay(mocked, upload):
    mocked.put(BLOB_URL, json={"code": "slow_down"}, status=429, headers={"Retry-After": "3"})

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert caught.value.retryable is True
    assert caught.value.retry_after == 3.0
    assert "retry after 3s" in str(caught.value)


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
def test_put_blob_client_errors_are_not_retryable_and_name_the_code(mocked, upload, status):
    mocked.put(
        BLOB_URL,
        json={"code": "invalid_blob", "detail": "the blob is invalid"},
        status=status,
        headers={"Retry-After": "3"},
    )

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    error = caught.value
    assert error.retryable is False
    assert error.retry_after is None
    assert error.status_code == status
    assert error.code == "invalid_blob"
    assert error.message == f"HTTP {status} invalid_blob: the blob is invalid"
    assert str(error) == f"blobservice: HTTP {status} invalid_blob: the blob is invalid"


def test_error_messages_never_carry_a_non_json_body(mocked, upload):
    mocked.put(BLOB_URL, body="<html>secret internals</html>", status=400)

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert caught.value.message == "HTTP 400"
    assert caught.value.code is None


def test_error_messages_cap_a_long_detail_and_flatten_newlines(mocked, upload):
    mocked.put(BLOB_URL, json={"code": "bad", "detail": "line\n" * 500}, status=400)

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert len(caught.value.message) <= 200
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith("HTTP 400 bad: line line")


def test_put_blob_garbage_on_a_2xx_is_retryable(mocked, upload):
    mocked.put(BLOB_URL, body="<html>proxy page</html>", status=200)

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert caught.value.retryable is True
    assert caught.value.status_code == 200
    assert "not a JSON object" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [[stored()], {"id": "blob-1", "size": "8", "content_type": "text/csv"}, {"id": "blob-1"}],
    ids=["list", "size-as-string", "missing-fields"],
)
def test_put_blob_a_2xx_document_off_contract_is_an_error(mocked, upload, body):
    mocked.put(BLOB_URL, json=body, status=201)

    with pytest.raises(DownstreamError) as caught:
        put_blob("blob-1", upload, content_type="text/csv")

    assert caught.value.retryable is True


def test_put_blob_lets_a_missing_local_file_raise_as_is(tmp_path):
    with pytest.raises(FileNotFoundError):
        put_blob("blob-1", tmp_path / "missing", content_type="text/csv")


# open_blob


def test_open_blob_streams_chunks_and_closes_the_response(mocked):
    payload = bytes(range(256)) * 40
    mocked.get(
        BLOB_URL,
        body=payload,
        headers={"Content-Type": "application/pdf", "Content-Length": str(len(payload))},
    )

    blob = open_blob("blob-1")
    chunks = list(blob.iter_chunks(chunk_size=4096))
    blob.close()

    assert blob.content_type == "application/pdf"
    assert blob.content_length == len(payload)
    assert b"".join(chunks) == payload
    assert max(len(c) for c in chunks) <= 4096 and len(chunks) > 1
    (call,) = mocked.calls
    assert call.request.method == "GET"
    assert call.request.req_kwargs["stream"] is True
    assert call.request.req_kwargs["timeout"] == (1.5, 9.0)
    assert call.response.raw.closed


def test_open_blob_sends_no_range_or_condition_unless_asked(mocked):
    mocked.get(BLOB_URL, body=b"data", headers={"ETag": '"v1"', "Accept-Ranges": "bytes"})

    with open_blob("blob-1") as blob:
        assert (blob.status_code, blob.etag, blob.accept_ranges) == (200, '"v1"', "bytes")

    sent = mocked.calls[0].request.headers
    assert not {"Range", "If-Range", "If-None-Match"} & set(sent)


def test_open_blob_passes_range_and_conditions_through_and_reads_a_206(mocked):
    mocked.get(
        BLOB_URL,
        body=b"cdef",
        status=206,
        headers={
            "Content-Range": "bytes 2-5/10",
            "Content-Length": "4",
            "ETag": '"v1"',
            "Accept-Ranges": "bytes",
        },
    )

    with open_blob("blob-1", byte_range="bytes=2-5", if_range='"v1"', if_none_match='"v0"') as blob:
        assert b"".join(blob.iter_chunks()) == b"cdef"
        assert blob.status_code == 206
        assert blob.content_range == "bytes 2-5/10"
        assert blob.content_length == 4
        assert blob.etag == '"v1"'

    sent = mocked.calls[0].request.headers
    assert (sent["Range"], sent["If-Range"], sent["If-None-Match"]) == ("bytes=2-5", '"v1"', '"v0"')
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 9.0)


def test_open_blob_answers_a_304_as_a_stream_without_a_body(mocked):
    mocked.get(BLOB_URL, status=304, headers={"ETag": '"v1"'})

    with open_blob("blob-1", if_none_match='"v1"') as blob:
        assert (blob.status_code, blob.etag) == (304, '"v1"')


def test_open_blob_of_a_range_past_the_end_raises_with_the_blob_s_size(mocked):
    mocked.get(
        BLOB_URL,
        status=416,
        json={"code": "range_not_satisfiable", "detail": "the blob has 10 bytes"},
        headers={"Content-Range": "bytes */10"},
    )

    with pytest.raises(RangeNotSatisfiable) as raised:
        open_blob("blob-1", byte_range="bytes=10-")

    assert raised.value.size == 10
    assert raised.value.status_code == 416 and not raised.value.retryable
    assert mocked.calls[0].response.raw.closed


def test_open_blob_of_a_416_without_content_range_has_no_size(mocked):
    mocked.get(BLOB_URL, status=416, body=b"")

    with pytest.raises(RangeNotSatisfiable) as raised:
        open_blob("blob-1", byte_range="bytes=10-")

    assert raised.value.size is None


def test_open_blob_closes_the_response_when_used_as_a_context_manager(mocked):
    mocked.get(BLOB_URL, body=b"data", content_type="text/plain")

    with open_blob("blob-1") as blob:
        assert b"".join(blob.iter_chunks()) == b"data"

    assert mocked.calls[0].response.raw.closed


def test_open_blob_without_content_headers_defaults_sensibly(mocked):
    mocked.get(BLOB_URL, body=b"data", content_type=None, auto_calculate_content_length=False)

    with open_blob("blob-1") as blob:
        assert blob.content_type == "application/octet-stream"
        assert blob.content_length is None


def test_open_blob_of_a_missing_blob_raises_blob_not_found(mocked):
    mocked.get(BLOB_URL, json={"code": "blob_not_found"}, status=404)

    with pytest.raises(BlobNotFound) as caught:
        open_blob("blob-1")

    assert caught.value.retryable is False
    assert caught.value.status_code == 404
    assert "blob_not_found" in str(caught.value)
    assert mocked.calls[0].response.raw.closed


def test_open_blob_treats_a_404_without_the_service_code_as_a_plain_error(mocked):
    # A misrouted proxy 404 must not be mistaken for "this blob does not exist".
    mocked.get(BLOB_URL, body="<html>Not Found</html>", status=404)

    with pytest.raises(DownstreamError) as caught:
        open_blob("blob-1")

    assert not isinstance(caught.value, BlobNotFound)
    assert caught.value.retryable is False


@pytest.mark.parametrize("status", [500, 502, 503])
def test_open_blob_server_errors_are_retryable(mocked, status):
    mocked.get(BLOB_URL, status=status)

    with pytest.raises(DownstreamError) as caught:
        open_blob("blob-1")

    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "exc", [requests.ConnectionError("refused"), requests.ReadTimeout("timed out")]
)
def test_open_blob_transport_failures_are_retryable(mocked, exc):
    mocked.get(BLOB_URL, body=exc)

    with pytest.raises(DownstreamError) as caught:
        open_blob("blob-1")

    assert caught.value.retryable is True


def test_open_blob_does_not_follow_redirects(mocked):
    mocked.get(BLOB_URL, status=302, headers={"Location": "http://elsewhere.test/blobs/blob-1"})

    with pytest.raises(DownstreamError) as caught:
        open_blob("blob-1")

    assert caught.value.status_code == 302
    assert caught.value.retryable is False
    assert len(mocked.calls) == 1


class _DroppingBody(io.RawIOBase):
    """A response body whose connection resets after the first read."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError("connection reset by peer")
        buffer[:4] = b"part"
        return 4


def test_open_blob_a_connection_dropped_mid_stream_is_retryable(mocked):
    mocked.get(BLOB_URL, body=io.BufferedReader(_DroppingBody()))

    with open_blob("blob-1") as blob, pytest.raises(DownstreamError) as caught:
        for _ in blob.iter_chunks(chunk_size=4):
            pass

    assert caught.value.retryable is True


# shared plumbing


def test_session_is_reused_within_a_process_and_recreated_after_a_fork(monkeypatch):
    first = http.session()
    assert http.session() is first

    monkeypatch.setattr(os, "getpid", lambda: -12345)
    in_child = http.session()

    assert in_child is not first
    assert http.session() is in_child


def test_requests_go_through_the_per_process_session(mocked, upload, monkeypatch):
    mocked.put(BLOB_URL, json=stored(), status=201)
    monkeypatch.setattr(os, "getpid", lambda: -54321)
    sent_by = []
    original = requests.Session.request

    def spy(self, *args, **kwargs):
        sent_by.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)

    put_blob("blob-1", upload, content_type="text/csv")

    assert sent_by == [http.session()]


def test_downstream_errors_survive_pickling():
    error = BlobNotFound("blobservice", "HTTP 404 blob_not_found", status_code=404, code="x")

    clone = pickle.loads(pickle.dumps(error))

    assert type(clone) is BlobNotFound
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),
        ("-1", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(header, expected):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)

    assert parse_retry_after(header, now=now) == expected


# delete_blob


def test_delete_blob_deletes_with_the_configured_timeouts(mocked):
    mocked.delete(BLOB_URL, status=204)

    assert delete_blob("blob-1") is True
    (call,) = mocked.calls
    assert call.request.method == "DELETE"
    assert call.request.req_kwargs["timeout"] == (1.5, 9.0)


def test_delete_blob_of_an_unknown_blob_is_false(mocked):
    mocked.delete(BLOB_URL, json={"code": "blob_not_found"}, status=404)

    assert delete_blob("blob-1") is False


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (404, False)])
def test_delete_blob_other_failures_raise(mocked, status, retryable):
    # A 404 without the service's code is a misrouted request, not an answer about the blob.
    mocked.delete(BLOB_URL, body="nope", status=status)

    with pytest.raises(DownstreamError) as caught:
        delete_blob("blob-1")

    assert caught.value.retryable is retryable
