"""Reference BlobService: stores opaque blobs on disk, streamed in and out.

    python -m refservices.blobservice --host 127.0.0.1 --port PORT --data-dir DIR

Routes (ids match ``[A-Za-z0-9._-]{1,128}``):

* ``PUT /blobs/{id}``    store the body (Content-Length or chunked); 201 new, 200 overwritten
* ``GET /blobs/{id}``    stream it back with its stored Content-Type; ``HEAD`` for headers only.
  Every answer carries a strong ``ETag`` and ``Accept-Ranges: bytes``; a single byte range
  (``Range: bytes=a-b``, ``a-``, ``-n``) answers 206 with ``Content-Range``, an unsatisfiable one
  416 with ``Content-Range: bytes */size``; ``If-None-Match`` answers 304 when it matches;
  ``If-Range`` with another ETag (or a date) makes a Range request answer the whole blob (200)
* ``DELETE /blobs/{id}`` 204, or 404
* ``/_control/...``      fault injection and statistics (see refservices.common.ControlPlane);
  the fault setting ``cut_next_get_after: N`` makes the next GET send N bytes of its body and
  drop the connection (a download cut off mid-way), once

Layout of the data dir: ``blobs/{id}`` (content), ``meta/{id}.json`` (size, content_type,
updated_at) and ``tmp/`` (uploads in progress, renamed into place when complete).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

from refservices.common import (
    CHUNK_SIZE,
    ControlPlane,
    HttpError,
    ServiceHandler,
    ServiceServer,
    base_arg_parser,
    clear_temp_files,
    iter_file,
    remove_quietly,
    serve_until_signalled,
    utc_now,
    write_all,
    write_json_atomic,
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# One range of RFC 9110's `bytes=` ranges: first-last, first- or -suffix. Several ranges (which
# would need a multipart answer) or anything else are ignored: the whole blob is sent, as RFC 9110
# allows.
_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_ENTITY_TAG = re.compile(r'(?:W/)?"[^"]*"')


class BlobStore:
    """Blobs on disk. Every upload lands in a temp file first and is renamed into place.

    One lock covers the moments when a blob's content and metadata files change or are opened
    together (a rename, an unlink, an open): it keeps the pair consistent for readers without
    ever being held while bytes are transferred.
    """

    def __init__(self, data_dir: Path) -> None:
        self.blobs_dir = data_dir / "blobs"
        self.meta_dir = data_dir / "meta"
        self.tmp_dir = data_dir / "tmp"
        for directory in (self.blobs_dir, self.meta_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        clear_temp_files(self.tmp_dir, "*")
        clear_temp_files(self.meta_dir)
        self._lock = threading.Lock()

    def _content_path(self, blob_id: str) -> Path:
        return self.blobs_dir / blob_id

    def _meta_path(self, blob_id: str) -> Path:
        return self.meta_dir / f"{blob_id}.json"

    def new_upload(self, blob_id: str) -> tuple[BinaryIO, str]:
        """An open temp file for an upload, on the same file system as the blobs."""
        fd, path = tempfile.mkstemp(dir=self.tmp_dir, prefix=f"{blob_id}.", suffix=".part")
        return os.fdopen(fd, "wb"), path

    def commit(self, blob_id: str, upload_path: str, content_type: str) -> tuple[dict, bool]:
        """Make a finished upload the current blob. Returns (metadata, created)."""
        meta = {
            "id": blob_id,
            "size": os.stat(upload_path).st_size,
            "content_type": content_type,
            "updated_at": utc_now(),
        }
        with self._lock:
            created = not self._content_path(blob_id).exists()
            write_json_atomic(self._meta_path(blob_id), meta)
            os.replace(upload_path, self._content_path(blob_id))
        return meta, created

    def open(self, blob_id: str) -> tuple[BinaryIO, str, int, str]:
        """Open a blob for reading: (file, content_type, size, etag). 404 when absent.

        The open file keeps reading the version that was current at this moment, even if an
        upload replaces the blob or a DELETE removes it meanwhile.
        """
        with self._lock:
            try:
                content = open(self._content_path(blob_id), "rb")  # noqa: SIM115 - returned
            except FileNotFoundError:
                raise _not_found(blob_id) from None
            meta = _read_meta(self._meta_path(blob_id))
        info = os.fstat(content.fileno())
        # Every upload is a new file renamed into place, never changed after: its inode, mtime
        # and size name this version, from the very file being read (no race with a rewrite).
        etag = f'"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"'
        return content, meta.get("content_type") or DEFAULT_CONTENT_TYPE, info.st_size, etag

    def delete(self, blob_id: str) -> None:
        with self._lock:
            try:
                os.unlink(self._content_path(blob_id))
            except FileNotFoundError:
                raise _not_found(blob_id) from None
            remove_quietly(self._meta_path(blob_id))


def _read_meta(path: Path) -> dict[str, Any]:
    # Metadata is advisory (the size always comes from the file itself), so a missing or
    # unreadable sidecar degrades to the default content type instead of failing the read.
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _matches_any(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: `*`, or any listed tag equal to ours compared weakly (W/ ignored)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.removeprefix("W/") == etag for tag in _ENTITY_TAG.findall(if_none_match))


def _resolve_range(byte_range: tuple[str, str], size: int) -> tuple[int, int]:
    """(first, last) byte positions of the range in a blob of `size`; first > last when the range
    is not satisfiable (it starts at or past the end, or is an empty suffix)."""
    first_text, last_text = byte_range
    if not first_text:
        suffix = int(last_text)
        return max(size - suffix, 0), size - 1 if suffix else -1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


def _not_found(blob_id: str) -> HttpError:
    return HttpError(404, "blob_not_found", f"no blob {blob_id!r}")


class BlobHandler(ServiceHandler):
    collection = "/blobs"
    invalid_id_code = "invalid_blob_id"
    operations = {
        "PUT": "put_blob",
        "GET": "get_blob",
        "HEAD": "head_blob",
        "DELETE": "delete_blob",
    }
    server_version = "RefBlobService/1.0"

    @property
    def store(self) -> BlobStore:
        return self.app

    def put_blob(self, blob_id: str) -> None:
        content_type = self.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
        chunks = self.body_chunks()  # 411 before any file is created
        upload, upload_path = self.store.new_upload(blob_id)
        try:
            with upload:
                write_all(chunks, upload)
            meta, created = self.store.commit(blob_id, upload_path, content_type)
        except BaseException:
            # An incomplete upload (client gone, bad chunking, disk full) never becomes visible.
            remove_quietly(upload_path)
            raise
        body = {"id": blob_id, "size": meta["size"], "content_type": content_type}
        self.send_json(201 if created else 200, body)

    def get_blob(self, blob_id: str) -> None:
        content, content_type, size, etag = self.store.open(blob_id)
        with content:
            validators = {"ETag": etag, "Accept-Ranges": "bytes"}
            if _matches_any(self.headers.get("If-None-Match"), etag):
                self.send_empty(304, validators)
                return
            first, last = 0, size - 1
            byte_range = self._requested_range(etag)
            if byte_range is not None:
                first, last = _resolve_range(byte_range, size)
                if first > last:
                    raise HttpError(
                        416,
                        "range_not_satisfiable",
                        f"the blob has {size} bytes",
                        headers={"Content-Range": f"bytes */{size}", **validators},
                    )
                validators["Content-Range"] = f"bytes {first}-{last}/{size}"
            length = last - first + 1
            self.start_stream(206 if byte_range else 200, content_type, length, headers=validators)
            if self.command == "HEAD":
                return
            content.seek(first)
            cut_after = self.server.control.take_setting("cut_next_get_after")
            if cut_after:
                sent = write_all(iter_file(content, CHUNK_SIZE, limit=int(cut_after)), self.wfile)
                self.close_connection = True  # the client sees its download cut off here
                return
            sent = write_all(iter_file(content, CHUNK_SIZE, limit=length), self.wfile)
        if sent != length:
            # Cannot happen with our own atomic writes; if it does, the client must not
            # mistake a short body for the whole blob.
            self.close_connection = True

    def _requested_range(self, etag: str) -> tuple[str, str] | None:
        """The Range asked for, as (first, last) text, or None for the whole blob."""
        match = _BYTE_RANGE.fullmatch((self.headers.get("Range") or "").strip())
        if match is None or match.groups() == ("", ""):
            return None
        first, last = match.groups()
        if first and last and int(last) < int(first):
            return None  # an invalid range: ignored, like any other malformed Range
        if_range = self.headers.get("If-Range")
        # RFC 9110 13.1.5: the range only if the blob is still the one the client saw (a strong
        # match); a date cannot say that here, so it counts as another version.
        if if_range is not None and if_range.strip() != etag:
            return None
        return first, last

    head_blob = get_blob

    def delete_blob(self, blob_id: str) -> None:
        self.store.delete(blob_id)
        self.send_empty(204)


def main(argv: list[str] | None = None) -> int:
    args = base_arg_parser("Reference BlobService").parse_args(argv)
    store = BlobStore(args.data_dir)
    control = ControlPlane(settings={"cut_next_get_after": 0})
    server = ServiceServer((args.host, args.port), BlobHandler, app=store, control=control)
    serve_until_signalled(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
