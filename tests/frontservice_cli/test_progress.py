"""frontservice_cli.progress: the upload reader that feeds the request body, and downloads that
replace their target only when complete."""

import io
import os

import pytest
import requests
import responses
import urllib3

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

    def stream(self, chunk_size, decode_content=True):
        yield b"first part"
        raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")

    def close(self):
        pass


def test_a_download_cut_short_leaves_no_file(tmp_path):
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Length"] = "100"
    response.raw = _BrokenRaw()
    target = tmp_path / "out.bin"

    with pytest.raises(ConnectionFailed, match="broke after 10 bytes"):
        download(response, str(target), progress=False)

    assert list(tmp_path.iterdir()) == []


def test_a_download_replaces_the_target_only_when_complete(tmp_path, mocked):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    mocked.get(f"{API}/x", body=b"new bytes")

    size = download(requests.get(f"{API}/x", stream=True, timeout=5), str(target), progress=False)

    assert size == 9
    assert target.read_bytes() == b"new bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
