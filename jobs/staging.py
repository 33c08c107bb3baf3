"""The staging area: inputs on a disk shared by the API and the workers until BlobService has them.

The API streams each upload into ``tmp/`` and renames it to ``<job id>`` once complete, so a
staged file either is whole or does not exist. The blob never travels through the broker.
"""

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


def staging_root() -> Path:
    return Path(settings.STAGING_DIR)


def ensure_dirs() -> None:
    (staging_root() / "tmp").mkdir(parents=True, exist_ok=True)


def staged_path(job_id: uuid.UUID | str) -> Path:
    return staging_root() / str(uuid.UUID(str(job_id)))


def new_temp_path() -> Path:
    return staging_root() / "tmp" / f"upload-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class StagedFile:
    path: Path
    size: int
    # Of the bytes, computed while they were written when asked for (Idempotency-Key checks).
    sha256: str | None


def stage_stream(
    stream, *, chunk_size: int, max_bytes: int | None = None, digest: bool = False
) -> StagedFile:
    """Copy a readable stream to a new temp file in chunks, hashing it on the way if `digest`.

    The chunks go through one reusable buffer, filled by the stream's `readinto` where it has
    one: a large body then costs no allocation or copy per chunk in Python (each fresh 1 MiB
    `bytes` is a new mapping the kernel has to fault in). sha256 runs at well under the speed
    of the rest of this loop, so it runs only when a caller needs it.
    """
    path = new_temp_path()
    size = 0
    sha256 = hashlib.sha256() if digest else None
    buffer = memoryview(bytearray(chunk_size))
    read_into = getattr(stream, "readinto", None) or _reader_into(stream)
    try:
        with path.open("wb") as out:
            # Never ask for more than one byte past the limit: a read blocks until it has all it
            # asked for, so a larger one would wait for (and take in) bytes of a body already
            # too large, and a client that stops sending there would get no answer at all.
            while received := read_into(buffer[: _read_size(chunk_size, max_bytes, size)]):
                size += received
                if max_bytes is not None and size > max_bytes:
                    raise InputTooLarge(max_bytes)
                chunk = buffer[:received]
                if sha256 is not None:
                    sha256.update(chunk)
                out.write(chunk)  # larger than the file's own buffer: written straight through
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StagedFile(
        path=path, size=size, sha256=sha256.hexdigest() if sha256 is not None else None
    )


def _reader_into(stream):
    """`readinto` for a stream that only has `read`."""

    def read_into(view: memoryview) -> int:
        data = stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    return read_into


def _read_size(chunk_size: int, max_bytes: int | None, size: int) -> int:
    return chunk_size if max_bytes is None else min(chunk_size, max_bytes + 1 - size)


def hash_file(path: Path, *, chunk_size: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def promote(temp_path: Path | str, job_id: uuid.UUID | str) -> Path:
    """Move a complete temp file to the job's staged path (a rename on the same disk)."""
    target = staged_path(job_id)
    os.replace(temp_path, target)
    return target


def discard(job_id: uuid.UUID | str) -> None:
    staged_path(job_id).unlink(missing_ok=True)


class InputTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"input larger than {limit} bytes")
        self.limit = limit
