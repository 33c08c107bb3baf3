"""Reading a job's input from the request into the staging area, never whole in memory."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from jobs import staging
from jobs.api import errors


@dataclass(frozen=True)
class StagedUpload:
    path: Path
    size: int
    content_type: str
    sha256: str


def stage_request_body(request) -> StagedUpload:
    """Stage the raw body or the multipart field `input`; raise an ApiError on bad input."""
    if request.content_type.startswith("multipart/form-data"):
        upload = _stage_multipart(request)
    else:
        upload = _stage_raw(request)
    if upload.size == 0:
        upload.path.unlink(missing_ok=True)
        raise errors.EmptyInput()
    return upload


def _stage_raw(request) -> StagedUpload:
    django_request = request._request
    limit = settings.MAX_INPUT_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared:
        if int(declared) > limit:
            # Refused before reading a byte of it.
            raise errors.InputTooLarge(f"The input is larger than {limit} bytes.")
        stream = django_request  # Django's stream stops at Content-Length
    elif request.META.get("wsgi.input_terminated"):
        # A chunked body: the server (gunicorn) decodes it and ends the stream for us.
        stream = request.META["wsgi.input"]
    else:
        raise errors.LengthRequired()
    try:
        staged = staging.stage_stream(
            stream, chunk_size=settings.UPLOAD_CHUNK_SIZE, max_bytes=limit
        )
    except staging.InputTooLarge as exc:
        raise errors.InputTooLarge(f"The input is larger than {exc.limit} bytes.") from exc
    content_type = request.META.get("CONTENT_TYPE") or "application/octet-stream"
    return StagedUpload(
        path=staged.path, size=staged.size, content_type=content_type, sha256=staged.sha256
    )


def _stage_multipart(request) -> StagedUpload:
    declared = request.META.get("CONTENT_LENGTH")
    if declared and int(declared) > settings.MAX_INPUT_BYTES + 64 * 1024:
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
        sha256=staging.hash_file(temp_path),
    )
