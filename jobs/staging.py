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
    sha256: str  # of the bytes, computed while they were written (Idempotency-Key checks)


def stage_stream(stream, *, chunk_size: int, max_bytes: int | None = None) -> StagedFile:
    """Copy a readable stream to a new temp file in chunks, hashing it on the way."""
    path = new_temp_path()
    size = 0
    digest = hashlib.sha256()
    try:
        with path.open("wb") as out:
            # Never ask for more than one byte past the limit: a read blocks until it has all it
            # asked for, so a larger one would wait for (and take in) bytes of a body already
            # too large, and a client that stops sending there would get no answer at all.
            while chunk := stream.read(_read_size(chunk_size, max_bytes, size)):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise InputTooLarge(max_bytes)
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StagedFile(path=path, size=size, sha256=digest.hexdigest())


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
