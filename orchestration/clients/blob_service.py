"""Client for blobservice: store a file under an id, stream it back."""

from __future__ import annotations

import os
import pathlib
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
DEFAULT_CHUNK_SIZE = 256 * 1024


class BlobNotFound(DownstreamError):
    """blobservice has no blob with this id."""


@dataclass(frozen=True)
class StoredBlob:
    """What blobservice reports after storing a blob."""

    id: str
    size: int
    content_type: str


class BlobStream:
    """An open blob download; close it (or use it as a context manager) to free the connection."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        # RFC 9110 lets a recipient assume octet-stream when the type is missing.
        self.content_type: str = response.headers.get("Content-Type") or "application/octet-stream"
        self.content_length: int | None = _parse_length(response.headers.get("Content-Length"))

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


def open_blob(blob_id: str) -> BlobStream:
    """Start downloading blob `blob_id`; raises BlobNotFound when it does not exist."""
    response = send(SERVICE, "GET", _blob_url(blob_id), stream=True)
    if is_success(response):
        return BlobStream(response)
    try:
        error = error_from_response(SERVICE, response)
    finally:
        response.close()
    # Only the service's own "not found" counts: a 404 from a misrouted proxy or a wrong base
    # URL says nothing about whether the blob exists.
    if error.status_code == 404 and error.code == "blob_not_found":
        raise BlobNotFound(SERVICE, error.message, status_code=404, code=error.code)
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
