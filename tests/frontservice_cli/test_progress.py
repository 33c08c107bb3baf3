"""frontservice_cli.progress: the upload reader that feeds the request body, and downloads that
replace their target only when complete."""

import io
import os

import pytest
import requests
import responses
import urllib3

from frontservice_cli import progress
from frontservice_cli.errors import ConnectionFailed
from frontservice_cli.progress import UploadReader, download

API = "http://frontservice.test/prefix"


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def test_upload_reader_reads_in_the_blocks_asked_for():
    class Bar:
        n = 0

        def update(self, count):
            self.n += count

    raw, bar = io.BytesIO(b"abcdefgh"), Bar()
    reader = UploadReader(raw, 8, bar)

    assert len(reader) == 8
    assert [reader.read(3), reader.read(3), reader.read(3), reader.read(3)] == [
        b"abc", b"def", b"gh", b""
    ]  # fmt: skip
    assert bar.n == 8


class _BrokenRaw:
    """A urllib3 body that delivers one chunk and then loses the connection."""

    def __init__(self, first: bytes = b"first part"):
        self.first = first

    def stream(self, chunk_size, decode_content=True):
        yield self.first
        raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")

    def close(self):
        pass


def _cut_response(first: bytes, total: int, **headers) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers.update({"Content-Length": str(total), **headers})
    response.raw = _BrokenRaw(first)
    return response


@pytest.fixture
def no_pause(monkeypatch):
    monkeypatch.setattr(progress, "RESUME_PAUSE", 0)


def test_a_download_cut_short_leaves_no_file(tmp_path):
    response = _cut_response(b"first part", 100)
    target = tmp_path / "out.bin"

    with pytest.raises(ConnectionFailed, match="broke after 10 bytes"):
        download(lambda offset, etag: response, str(target), progress=False)

    assert list(tmp_path.iterdir()) == []


def test_a_cut_download_resumes_where_it_stopped_with_range_and_if_range(
    tmp_path, mocked, no_pause
):
    data = b"0123456789" * 10
    first = _cut_response(data[:30], 100, ETag='"v1"', **{"Accept-Ranges": "bytes"})
    mocked.get(
        f"{API}/x",
        body=data[30:],
        status=206,
        headers={"Content-Range": "bytes 30-99/100", "ETag": '"v1"', "Accept-Ranges": "bytes"},
    )
    asked = []

    def open_at(offset, etag):
        asked.append((offset, etag))
        if offset == 0:
            return first
        headers = {"Range": f"bytes={offset}-", "If-Range": etag}
        return requests.get(f"{API}/x", headers=headers, stream=True, timeout=5)

    size = download(open_at, str(tmp_path / "out.bin"), progress=False)

    assert size == 100
    assert (tmp_path / "out.bin").read_bytes() == data
    assert asked == [(0, None), (30, '"v1"')]
    assert mocked.calls[0].request.headers["Range"] == "bytes=30-"


def test_a_cut_download_is_not_resumed_without_an_etag(tmp_path, no_pause):
    first = _cut_response(b"x" * 30, 100, **{"Accept-Ranges": "bytes"})
    asked = []

    def open_at(offset, etag):
        asked.append(offset)
        return first

    with pytest.raises(ConnectionFailed, match="broke after 30 bytes"):
        download(open_at, str(tmp_path / "out.bin"), progress=False)

    assert asked == [0]
    assert list(tmp_path.iterdir()) == []


def test_a_resume_answered_with_the_whole_output_fails_and_leaves_no_file(
    tmp_path, mocked, no_pause
):
    # If-Range did not match (another version) or the server ignored Range: the 30 bytes
    # already written may not go with what comes now.
    first = _cut_response(b"x" * 30, 100, ETag='"v1"', **{"Accept-Ranges": "bytes"})
    mocked.get(f"{API}/x", body=b"y" * 100, status=200)

    def open_at(offset, etag):
        return first if offset == 0 else requests.get(f"{API}/x", stream=True, timeout=5)

    with pytest.raises(ConnectionFailed, match="could not be fetched"):
        download(open_at, str(tmp_path / "out.bin"), progress=False)

    assert list(tmp_path.iterdir()) == []


def test_a_download_replaces_the_target_only_when_complete(tmp_path, mocked):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    mocked.get(f"{API}/x", body=b"new bytes")

    response = requests.get(f"{API}/x", stream=True, timeout=5)
    size = download(lambda offset, etag: response, str(target), progress=False)

    assert size == 9
    assert target.read_bytes() == b"new bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
