"""Reference BlobService: stores opaque blobs on disk, streamed in and out.

    python -m refservices.blobservice --host 127.0.0.1 --port PORT --data-dir DIR

Routes (ids match ``[A-Za-z0-9._-]{1,128}``):

* ``PUT /blobs/{id}``    store the body (Content-Length or chunked); 201 new, 200 overwritten
* ``GET /blobs/{id}``    stream it back with its stored Content-Type; ``HEAD`` for headers only
* ``DELETE /blobs/{id}`` 204, or 404
* ``/_control/...``      fault injection and statistics (see refservices.common.ControlPlane)

Layout of the data dir: ``blobs/{id}`` (content), ``meta/{id}.json`` (size, content_type,
updated_at) and ``tmp/`` (uploads in progress, renamed into place when complete).
"""

from __future__ import annotations

import json
import os
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

    def open(self, blob_id: str) -> tuple[BinaryIO, str, int]:
        """Open a blob for reading: (file, content_type, size). 404 when absent.

        The open file keeps reading the version that was current at this moment, even if an
        upload replaces the blob or a DELETE removes it meanwhile.
        """
        with self._lock:
            try:
                content = open(self._content_path(blob_id), "rb")  # noqa: SIM115 - returned
            except FileNotFoundError:
                raise _not_found(blob_id) from None
            meta = _read_meta(self._meta_path(blob_id))
        size = os.fstat(content.fileno()).st_size
        return content, meta.get("content_type") or DEFAULT_CONTENT_TYPE, size

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
        content, content_type, size = self.store.open(blob_id)
        with content:
            self.start_stream(200, content_type, size)
            if self.command == "HEAD":
                return
            sent = write_all(iter_file(content, CHUNK_SIZE), self.wfile)
        if sent != size:
            # Cannot happen with our own atomic writes; if it does, the client must not
            # mistake a short body for the whole blob.
            self.close_connection = True

    head_blob = get_blob

    def delete_blob(self, blob_id: str) -> None:
        self.store.delete(blob_id)
        self.send_empty(204)


def main(argv: list[str] | None = None) -> int:
    args = base_arg_parser("Reference BlobService").parse_args(argv)
    store = BlobStore(args.data_dir)
    server = ServiceServer((args.host, args.port), BlobHandler, app=store, control=ControlPlane())
    serve_until_signalled(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
