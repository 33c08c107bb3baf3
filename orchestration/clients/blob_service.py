"""Client for blobservice: store a file under an id, stream it back (whole, or a byte range)."""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import requests
from django.conf import settings

from .http import (
    DownstreamError,
    error_from_exception,
    error_from_response,
    is_success,
    json_object,
    send,
    service_url,
    unexpected_body,
)

SERVICE = "blobservice"
# Large reads keep the per-chunk cost (a system call each way, a Python-level iteration) small
# beside the copy itself when the output is relayed to a client.
DEFAULT_CHUNK_SIZE = 1024 * 1024
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")


class BlobNotFound(DownstreamError):
    """blobservice has no blob with this id."""


class RangeNotSatisfiable(DownstreamError):
    """The byte range asked for starts past the blob's end; `size` is the blob's, if told."""

    def __init__(self, *args, size: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.size = size


@dataclass(frozen=True)
class StoredBlob:
    """What blobservice reports after storing a blob."""

    id: str
    size: int
    content_type: str


class BlobStream:
    """An open blob download; close it (or use it as a context manager) to free the connection.

    `status_code` is 200 (the whole blob), 206 (the range in `content_range`) or 304 (not
    modified: no body). `etag` and `accept_ranges` are blobservice's, when it sends them.
    """

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        headers = response.headers
        self.status_code: int = response.status_code
        # RFC 9110 lets a recipient assume octet-stream when the type is missing.
        self.content_type: str = headers.get("Content-Type") or "application/octet-stream"
        self.content_length: int | None = _parse_length(headers.get("Content-Length"))
        self.content_range: str | None = headers.get("Content-Range")
        self.etag: str | None = headers.get("ETag")
        self.accept_ranges: str | None = headers.get("Accept-Ranges")

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the blob's bytes; a dropped connection raises a retryable DownstreamError."""
        try:
            yield from self._response.iter_content(chunk_size)
        except requests.RequestException as exc:
            raise error_from_exception(SERVICE, exc) from exc

    def close(self) -> None:
        """Close the underlying response."""
        self._response.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def put_blob(blob_id: str, path: pathlib.Path | str, *, content_type: str) -> StoredBlob:
    """Upload the file at `path` as blob `blob_id` (created or overwritten)."""
    url = _blob_url(blob_id)
    # The file is opened here on every call so that a caller's retry re-reads it from the start;
    # a stream handed in by the caller would already be consumed by the failed attempt.
    with open(path, "rb") as body:
        # requests streams a non-empty file with its Content-Length, but would fall back to
        # chunked encoding for an empty one; an empty bytes body keeps "Content-Length: 0".
        data = body if os.fstat(body.fileno()).st_size else b""
        response = send(SERVICE, "PUT", url, data=data, headers={"Content-Type": content_type})
    if not is_success(response):
        raise error_from_response(SERVICE, response)
    document = json_object(SERVICE, response)
    stored_id, size, stored_type = (document.get(k) for k in ("id", "size", "content_type"))
    # bool is an int subclass; `true` is not a size.
    if (
        not isinstance(stored_id, str)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or not isinstance(stored_type, str)
    ):
        raise unexpected_body(SERVICE, response, "expected id, size and content_type")
    return StoredBlob(id=stored_id, size=size, content_type=stored_type)


def open_blob(
    blob_id: str,
    *,
    byte_range: str | None = None,
    if_range: str | None = None,
    if_none_match: str | None = None,
) -> BlobStream:
    """Start downloading blob `blob_id`, with the Range, If-Range and If-None-Match given (passed
    as they are; blobservice decides); raises BlobNotFound when it does not exist and
    RangeNotSatisfiable for a range past its end. A 304 is a BlobStream without a body."""
    conditions = {"Range": byte_range, "If-Range": if_range, "If-None-Match": if_none_match}
    headers = {name: value for name, value in conditions.items() if value is not None}
    response = send(SERVICE, "GET", _blob_url(blob_id), stream=True, headers=headers)
    if is_success(response) or response.status_code == 304:
        return BlobStream(response)
    try:
        error = error_from_response(SERVICE, response)
    finally:
        response.close()
    # Only the service's own "not found" counts: a 404 from a misrouted proxy or a wrong base
    # URL says nothing about whether the blob exists.
    if error.status_code == 404 and error.code == "blob_not_found":
        raise BlobNotFound(SERVICE, error.message, status_code=404, code=error.code)
    if error.status_code == 416:
        match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        raise RangeNotSatisfiable(
            SERVICE,
            error.message,
            status_code=416,
            code=error.code,
            size=int(match.group(1)) if match else None,
        )
    raise error


def delete_blob(blob_id: str) -> bool:
    """Delete blob `blob_id`; False when it did not exist."""
    response = send(SERVICE, "DELETE", _blob_url(blob_id))
    if is_success(response):
        return True
    error = error_from_response(SERVICE, response)
    if error.status_code == 404 and error.code == "blob_not_found":
        return False  # the outcome the caller wants: no such blob
    raise error


def _blob_url(blob_id: str) -> str:
    return service_url(settings.BLOBSERVICE_URL, "blobs", blob_id)


def _parse_length(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() else None
