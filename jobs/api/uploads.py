"""Reading a job's input from the request into the staging area, never whole in memory.

A body is staged only whole: one that ends before its Content-Length (or a chunked one cut off
before its last chunk, or one that stops coming for UPLOAD_IDLE_TIMEOUT) raises while it is read
(frontservice/request_body.py), its partial copy is removed, and no job or Idempotency-Key claim
is ever made from it.

Reading a body is what a slow client makes a thread wait on, so the uploads one API process
reads at once are capped, in all (UPLOADS_PER_PROCESS) and per owner (UPLOADS_PER_OWNER), and the
cap is checked before a byte is read: beyond it, 429 `too_many_uploads` with Retry-After. The view
takes the slot right after authentication (JobViewSet.check_throttles), before any database round
trip, and gives it back once the body is read.
"""

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from frontservice.request_body import StrictInput
from jobs import staging
from jobs.api import errors
from jobs.api.tokens import Principal

# Seconds a client refused for too many uploads is asked to wait: an upload slot frees when an
# upload ends, which for a stalled one is within UPLOAD_IDLE_TIMEOUT.
UPLOAD_RETRY_AFTER = 5

_slots_lock = threading.Lock()
_uploads_in_progress: Counter[tuple[str, str]] = Counter()


@contextmanager
def upload_slot(*, owner: Principal) -> Iterator[None]:
    """Hold one of this process's upload slots while the body is read; TooManyUploads if none."""
    key = (owner.tenant_id, owner.sub)
    with _slots_lock:
        if (
            _uploads_in_progress.total() >= settings.UPLOADS_PER_PROCESS
            or _uploads_in_progress[key] >= settings.UPLOADS_PER_OWNER
        ):
            raise errors.TooManyUploads(wait=UPLOAD_RETRY_AFTER)
        _uploads_in_progress[key] += 1
    try:
        yield
    finally:
        with _slots_lock:
            _uploads_in_progress[key] -= 1
            if _uploads_in_progress[key] <= 0:
                del _uploads_in_progress[key]


@dataclass(frozen=True)
class StagedUpload:
    path: Path
    size: int
    content_type: str
    sha256: str | None  # only when asked for (an Idempotency-Key compares it)


def stage_request_body(request, *, digest: bool = False) -> StagedUpload:
    """Stage the raw body or the multipart field `input`, with its sha256 if `digest`; raise an
    ApiError on bad input."""
    if request.content_type.startswith("multipart/form-data"):
        upload = _stage_multipart(request, digest=digest)
    else:
        upload = _stage_raw(request, digest=digest)
    if upload.size == 0:
        upload.path.unlink(missing_ok=True)
        raise errors.EmptyInput()
    return upload


def _declared_length(request) -> int | None:
    declared = request.META.get("CONTENT_LENGTH")
    if not declared:
        return None
    if not declared.isdigit():
        raise errors.InvalidContentLength()
    return int(declared)


def _stage_raw(request, *, digest: bool) -> StagedUpload:
    django_request = request._request
    limit = settings.MAX_INPUT_BYTES
    declared = _declared_length(request)
    if declared is not None:
        if declared > limit:
            # Refused before reading a byte of it.
            raise errors.InputTooLarge(f"The input is larger than {limit} bytes.")
        # Django's stream stops at Content-Length, and so does the server's own stream with
        # `readinto` (frontservice/request_body.py), which reads a large body much faster.
        wsgi_input = request.META.get("wsgi.input")
        stream = wsgi_input if isinstance(wsgi_input, StrictInput) else django_request
    elif request.META.get("wsgi.input_terminated"):
        # A chunked body: the server (gunicorn) decodes it and ends the stream for us.
        stream = request.META["wsgi.input"]
    else:
        raise errors.LengthRequired()
    # No larger a buffer than the body: a fresh 1 MiB one is zeroed page by page, which cost a
    # small upload more than all the rest of its staging.
    chunk_size = settings.UPLOAD_CHUNK_SIZE
    if declared:
        chunk_size = min(chunk_size, declared)
    try:
        staged = staging.stage_stream(stream, chunk_size=chunk_size, max_bytes=limit, digest=digest)
    except staging.InputTooLarge as exc:
        raise errors.InputTooLarge(f"The input is larger than {exc.limit} bytes.") from exc
    if declared is not None and staged.size != declared:
        # The stream under gunicorn raises on a short body; this holds wherever it does not.
        staged.path.unlink(missing_ok=True)
        raise errors.IncompleteBody()
    content_type = request.META.get("CONTENT_TYPE") or "application/octet-stream"
    return StagedUpload(
        path=staged.path, size=staged.size, content_type=content_type, sha256=staged.sha256
    )


def _stage_multipart(request, *, digest: bool) -> StagedUpload:
    declared = _declared_length(request)
    if declared and declared > settings.MAX_INPUT_BYTES + 64 * 1024:
        raise errors.InputTooLarge(f"The input is larger than {settings.MAX_INPUT_BYTES} bytes.")
    upload = request.FILES.get("input")
    if upload is None:
        raise errors.MissingInput()
    if upload.size > settings.MAX_INPUT_BYTES:
        raise errors.InputTooLarge(f"The input is larger than {settings.MAX_INPUT_BYTES} bytes.")
    # TemporaryFileUploadHandler wrote it under STAGING_DIR/tmp: take the file over by
    # renaming it (Django's cleanup then finds it gone, which it tolerates).
    temp_path = staging.new_temp_path()
    Path(upload.temporary_file_path()).rename(temp_path)
    return StagedUpload(
        path=temp_path,
        size=upload.size,
        content_type=upload.content_type or "application/octet-stream",
        # Django wrote this file itself, so it is hashed in a second pass.
        sha256=staging.hash_file(temp_path) if digest else None,
    )
