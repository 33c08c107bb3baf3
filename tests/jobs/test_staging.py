"""jobs/staging.py: a stream copied to a staged temp file through one reusable buffer, hashed
only when asked, and never past its size limit."""

import hashlib
import io

import pytest

from jobs import staging

BODY = bytes(range(256)) * 50  # 12,800 bytes: several chunks of 4096


class _ReadOnly:
    """A stream with only `read`, as Django's request is."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


@pytest.fixture(autouse=True)
def staging_dir(settings, tmp_path):
    settings.STAGING_DIR = tmp_path
    staging.ensure_dirs()


@pytest.mark.parametrize("stream", [io.BytesIO, _ReadOnly], ids=["readinto", "read"])
def test_it_copies_the_stream_whole_and_hashes_it_when_asked(stream):
    hashed = staging.stage_stream(stream(BODY), chunk_size=4096, digest=True)
    plain = staging.stage_stream(stream(BODY), chunk_size=4096)

    assert hashed.path.read_bytes() == BODY and hashed.size == len(BODY)
    assert hashed.sha256 == hashlib.sha256(BODY).hexdigest()
    assert plain.path.read_bytes() == BODY and plain.sha256 is None


def test_a_stream_past_the_limit_raises_and_leaves_no_file(tmp_path):
    with pytest.raises(staging.InputTooLarge):
        staging.stage_stream(io.BytesIO(BODY), chunk_size=4096, max_bytes=len(BODY) - 1)

    assert list((tmp_path / "tmp").iterdir()) == []
