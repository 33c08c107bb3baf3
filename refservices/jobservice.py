"""Reference JobService: runs a toy computation over blobs held by the BlobService.

    python -m refservices.jobservice --host 127.0.0.1 --port PORT --data-dir DIR \\
        --blobservice-url http://127.0.0.1:PORT [--delay SECONDS] [--workers N]

Routes (ids match ``[A-Za-z0-9._-]{1,128}``):

* ``PUT /jobs/{id}`` ``{"blob_id": ...}``  idempotent create: 201 new, 200 same again, 409 conflict
* ``GET /jobs/{id}``                      the job document
* ``DELETE /jobs/{id}``                   cancel a QUEUED or RUNNING job (409 once final)
* ``/_control/...``                       faults and stats, plus ``"execution_delay"`` and the
                                          per-job ``"executions"`` counter

The computation reads the input blob (streamed), turns every byte a-z into A-Z and writes the
result back over the same blob id (streamed, chunked), keeping its Content-Type. An input
starting with ``#fail`` fails the job and leaves the blob untouched.

Each job document is a JSON file ``jobs/{id}.json`` in the data dir, replaced atomically on every
change; jobs found QUEUED or RUNNING at start-up are queued again.
"""

from __future__ import annotations

import http.client
import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from refservices.common import (
    CHUNK_SIZE,
    CHUNKED_END,
    ControlPlane,
    HttpError,
    ServiceHandler,
    ServiceServer,
    base_arg_parser,
    clear_temp_files,
    frame_chunk,
    is_valid_id,
    serve_until_signalled,
    utc_now,
    write_json_atomic,
)

UPPERCASE = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
FAIL_MARKER = b"#fail"
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- BlobService client


class BlobServiceError(Exception):
    """BlobService could not be reached or gave an unexpected answer (message is for humans)."""


class Cancelled(Exception):
    """The job was cancelled while it ran; its output must not be written."""


class BlobReader:
    """A streamed GET of a blob. Verifies that the whole announced body arrives.

    (http.client quietly returns a short body when the server closes early; a truncated input
    must fail the job rather than be written back as if it were complete.)
    """

    def __init__(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, label: str
    ) -> None:
        self._conn = conn
        self._response = response
        self._label = label
        self.content_type = response.getheader("Content-Type") or DEFAULT_CONTENT_TYPE
        length = response.getheader("Content-Length")
        self._expected = int(length) if length and length.isdigit() else None
        self._received = 0

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        try:
            data = self._response.read(size)
        except (OSError, http.client.HTTPException) as error:
            raise BlobServiceError(f"BlobService failed during {self._label}: {error!r}") from None
        self._received += len(data)
        if not data and self._expected is not None and self._received != self._expected:
            raise BlobServiceError(
                f"BlobService cut {self._label} short: {self._received} of {self._expected} bytes"
            )
        return data

    def close(self) -> None:
        self._conn.close()


class ChunkedUpload:
    """A streamed, chunked PUT of a blob. Nothing is stored until ``finish`` sends the last chunk.

    BlobService only renames an upload into place once the terminating chunk arrived, so
    closing the connection before ``finish`` (``close``) abandons the upload cleanly.
    """

    def __init__(self, conn: http.client.HTTPConnection, label: str) -> None:
        self._conn = conn
        self._label = label

    def send(self, data: bytes) -> None:
        if not data:
            return
        try:
            self._conn.send(frame_chunk(data))
        except OSError as error:
            raise BlobServiceError(f"BlobService failed during {self._label}: {error!r}") from None

    def finish(self) -> None:
        """Send the end of the body and check BlobService's answer."""
        try:
            self._conn.send(CHUNKED_END)
            response = self._conn.getresponse()
            body = response.read(4096)
        except (OSError, http.client.HTTPException) as error:
            raise BlobServiceError(f"BlobService failed during {self._label}: {error!r}") from None
        if response.status not in (200, 201):
            raise BlobServiceError(_unexpected(self._label, response.status, body))

    def close(self) -> None:
        self._conn.close()


def _unexpected(label: str, status: int, body: bytes) -> str:
    return f"BlobService answered {status} to {label}: {body[:200].decode(errors='replace')}"


class BlobClient:
    """Just enough of a BlobService client for JobService, with timeouts on every call."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def _path(self, blob_id: str) -> str:
        return f"{self._prefix}/blobs/{quote(blob_id, safe='')}"

    def exists(self, blob_id: str) -> bool:
        """HEAD the blob: True if present, False on 404, BlobServiceError otherwise."""
        label = f"HEAD /blobs/{blob_id}"
        conn = self._connect()
        try:
            conn.request("HEAD", self._path(blob_id))
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            raise BlobServiceError(f"BlobService unreachable for {label}: {error!r}") from None
        finally:
            conn.close()
        if response.status == 404:
            return False
        if 200 <= response.status < 300:
            return True
        raise BlobServiceError(_unexpected(label, response.status, b""))

    def open_read(self, blob_id: str) -> BlobReader:
        label = f"GET /blobs/{blob_id}"
        conn = self._connect()
        try:
            conn.request("GET", self._path(blob_id))
            response = conn.getresponse()
            if response.status != 200:
                raise BlobServiceError(_unexpected(label, response.status, response.read(4096)))
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise BlobServiceError(f"BlobService unreachable for {label}: {error!r}") from None
        except BaseException:
            conn.close()
            raise
        return BlobReader(conn, response, label)

    def start_upload(self, blob_id: str, content_type: str) -> ChunkedUpload:
        label = f"PUT /blobs/{blob_id}"
        conn = self._connect()
        try:
            conn.putrequest("PUT", self._path(blob_id))
            conn.putheader("Content-Type", content_type)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
        except OSError as error:
            conn.close()
            raise BlobServiceError(f"BlobService unreachable for {label}: {error!r}") from None
        return ChunkedUpload(conn, label)


# --------------------------------------------------------------------------- job storage


class JobStore:
    """Job documents: cached in memory, each persisted as ``{id}.json`` (atomically replaced).

    ``lock_for(id)`` serialises every change of one job (create, state transitions, cancel);
    the store's own lock only guards the dictionaries for an instant.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        clear_temp_files(directory)
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        # Re-entrant so a holder can call helpers that take the same job's lock again.
        self._job_locks: dict[str, threading.RLock] = {}

    def load(self) -> list[dict[str, Any]]:
        """Read every persisted job into memory; return their documents."""
        for path in sorted(self.directory.glob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                if document["id"] != path.stem:
                    raise ValueError(f"it holds job {document['id']!r}")
            except (OSError, ValueError, KeyError, TypeError) as error:
                log(f"skipping unreadable job file {path}: {error!r}")
                continue
            with self._lock:
                self._jobs[document["id"]] = document
        with self._lock:
            return [dict(document) for document in self._jobs.values()]

    def lock_for(self, job_id: str) -> threading.RLock:
        with self._lock:
            return self._job_locks.setdefault(job_id, threading.RLock())

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            document = self._jobs.get(job_id)
            return None if document is None else dict(document)

    def save(self, document: dict[str, Any]) -> None:
        """Persist, then publish: a job is only visible once it is on disk."""
        write_json_atomic(self.directory / f"{document['id']}.json", document)
        with self._lock:
            self._jobs[document["id"]] = dict(document)


# --------------------------------------------------------------------------- the service


class JobService:
    """Creates, cancels and executes jobs. Execution runs on a pool of worker threads."""

    def __init__(self, store: JobStore, blobs: BlobClient, control: ControlPlane) -> None:
        self.store = store
        self.blobs = blobs
        self.control = control
        self.stopping = threading.Event()
        self._queue: queue.Queue[tuple[str, float]] = queue.Queue()
        # Jobs accepted and not yet through a worker: what a test waits for before the next
        # one, so that no job of its still writes to BlobService while the next one runs.
        control.gauges["unfinished"] = lambda: self._queue.unfinished_tasks
        self._lock = threading.Lock()
        self._cancel_events: dict[str, threading.Event] = {}
        self._executing: set[str] = set()

    # -- lifecycle

    def start_workers(self, count: int) -> None:
        for number in range(count):
            threading.Thread(target=self._work, name=f"job-worker-{number}", daemon=True).start()

    def stop(self) -> None:
        # Workers stop taking jobs; unfinished ones stay QUEUED/RUNNING on disk and are
        # resumed by the next start.
        self.stopping.set()

    def resume(self) -> None:
        """Queue again every job a previous run accepted but did not finish."""
        for document in self.store.load():
            if document["status"] == "RUNNING":
                document = self._update(document, "QUEUED")
            if document["status"] in {"QUEUED", "RUNNING"}:
                log(f"job {document['id']}: resuming")
                self._enqueue(document["id"])

    # -- API operations

    def create(self, job_id: str, blob_id: str) -> tuple[int, dict[str, Any]]:
        """Idempotent create: (201, new job) or (200, the same job again)."""
        with self.store.lock_for(job_id):
            existing = self.store.get(job_id)
            if existing is not None:
                if existing["blob_id"] == blob_id:
                    return 200, existing
                raise HttpError(
                    409,
                    "job_conflict",
                    f"job {job_id!r} exists with blob_id {existing['blob_id']!r}",
                    extra={"job": existing},
                )
            self._require_blob(blob_id)
            now = utc_now()
            document = {
                "id": job_id,
                "blob_id": blob_id,
                "status": "QUEUED",
                "error": None,
                "created_at": now,
                "updated_at": now,
            }
            self.store.save(document)
        log(f"job {job_id}: QUEUED (blob {blob_id})")
        self._enqueue(job_id)
        return 201, document

    def get(self, job_id: str) -> dict[str, Any]:
        document = self.store.get(job_id)
        if document is None:
            raise _job_not_found(job_id)
        return document

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self.store.lock_for(job_id):
            document = self.get(job_id)
            if document["status"] in FINAL_STATUSES:
                raise HttpError(
                    409,
                    "job_final",
                    f"job is already {document['status']}",
                    extra={"job": document},
                )
            document = self._update(document, "CANCELLED")
            self._cancel_event(job_id).set()
        return document

    def _require_blob(self, blob_id: str) -> None:
        try:
            exists = self.blobs.exists(blob_id)
        except BlobServiceError as error:
            raise HttpError(503, "blobservice_unavailable", str(error)) from None
        if not exists:
            raise HttpError(422, "blob_not_found", f"BlobService has no blob {blob_id!r}")

    # -- state

    def execution_delay(self) -> float:
        return self.control.setting("execution_delay")

    def _update(self, document: dict[str, Any], status: str, error: str | None = None) -> dict:
        document = dict(document, status=status, error=error, updated_at=utc_now())
        self.store.save(document)
        log(f"job {document['id']}: {status}" + (f" ({error})" if error else ""))
        return document

    def _transition(
        self, job_id: str, status: str, *, expected: str, error: str | None = None
    ) -> bool:
        """Move the job to ``status`` if it is still ``expected`` (a cancel may have won)."""
        with self.store.lock_for(job_id):
            document = self.store.get(job_id)
            if document is None or document["status"] != expected:
                return False
            self._update(document, status, error)
            return True

    def _cancel_event(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._cancel_events.setdefault(job_id, threading.Event())

    def _enqueue(self, job_id: str) -> None:
        # The timestamp makes the execution delay count from acceptance, not from whenever a
        # worker becomes free.
        self._queue.put((job_id, time.monotonic()))

    def _claim(self, job_id: str) -> bool:
        """Reserve the job for this worker: one job never executes twice at the same time."""
        with self._lock:
            if job_id in self._executing:
                return False
            self._executing.add(job_id)
            return True

    def _release(self, job_id: str) -> None:
        with self._lock:
            self._executing.discard(job_id)

    # -- execution

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                job_id, enqueued_at = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if not self._claim(job_id):
                self._queue.task_done()
                continue
            try:
                self._run(job_id, enqueued_at)
            except Exception as error:  # a bug must not kill the worker thread
                log(f"job {job_id}: internal error {error!r}")
                self._transition(
                    job_id, "FAILED", expected="RUNNING", error=f"internal error: {error!r}"
                )
            finally:
                self._release(job_id)
                self._queue.task_done()

    def _run(self, job_id: str, enqueued_at: float) -> None:
        if not self._wait_while_queued(job_id, enqueued_at):
            return
        if not self._transition(job_id, "RUNNING", expected="QUEUED"):
            return
        self.control.bump("executions", job_id)
        try:
            self._compute(job_id)
        except Cancelled:
            log(f"job {job_id}: computation stopped, output discarded")
        except BlobServiceError as error:
            self._transition(job_id, "FAILED", expected="RUNNING", error=str(error))

    def _wait_while_queued(self, job_id: str, enqueued_at: float) -> bool:
        """Sleep out the execution delay; False if the job was cancelled or we are stopping.

        The delay is re-read while waiting so a test can shorten it through the control plane.
        """
        cancelled = self._cancel_event(job_id)
        while not self.stopping.is_set():
            remaining = enqueued_at + self.execution_delay() - time.monotonic()
            if remaining <= 0:
                return not cancelled.is_set()
            if cancelled.wait(min(remaining, 0.1)):
                return False
        return False

    def _compute(self, job_id: str) -> None:
        blob_id = self.get(job_id)["blob_id"]
        cancelled = self._cancel_event(job_id)
        source = self.blobs.open_read(blob_id)
        try:
            head = _read_head(source, len(FAIL_MARKER))
            if head.startswith(FAIL_MARKER):
                self._transition(
                    job_id, "FAILED", expected="RUNNING", error="input starts with #fail"
                )
                return
            if cancelled.is_set():
                raise Cancelled
            upload = self.blobs.start_upload(blob_id, source.content_type)
            try:
                chunk = head
                while chunk:
                    if cancelled.is_set():
                        raise Cancelled
                    upload.send(chunk.translate(UPPERCASE))
                    chunk = source.read(CHUNK_SIZE)
                self._commit(job_id, upload)
            finally:
                upload.close()
        finally:
            source.close()

    def _commit(self, job_id: str, upload: ChunkedUpload) -> None:
        """Complete the upload and mark SUCCEEDED as one step with respect to cancellation.

        Holding the job's lock means a DELETE either lands before (we abandon the upload, the
        blob is untouched) or after (it finds the job SUCCEEDED and answers 409).
        """
        with self.store.lock_for(job_id):
            if self.get(job_id)["status"] != "RUNNING":
                raise Cancelled
            upload.finish()
            self._transition(job_id, "SUCCEEDED", expected="RUNNING")


def _read_head(source: BlobReader, size: int) -> bytes:
    """Read until at least ``size`` bytes (or the end) are in hand, to look for the marker."""
    head = source.read(CHUNK_SIZE)
    while head and len(head) < size:
        more = source.read(CHUNK_SIZE)
        if not more:
            break
        head += more
    return head


def _job_not_found(job_id: str) -> HttpError:
    return HttpError(404, "job_not_found", f"no job {job_id!r}")


# --------------------------------------------------------------------------- HTTP


class JobHandler(ServiceHandler):
    collection = "/jobs"
    invalid_id_code = "invalid_job_id"
    operations = {"PUT": "put_job", "GET": "get_job", "DELETE": "delete_job"}
    server_version = "RefJobService/1.0"

    @property
    def jobs(self) -> JobService:
        return self.app

    def put_job(self, job_id: str) -> None:
        body = self.read_json_body()
        blob_id = body.get("blob_id") if isinstance(body, dict) else None
        if not isinstance(blob_id, str) or not is_valid_id(blob_id):
            raise HttpError(
                400, "invalid_request", 'expected {"blob_id": "<id>"} with a valid blob id'
            )
        status, document = self.jobs.create(job_id, blob_id)
        self.send_json(status, document)

    def get_job(self, job_id: str) -> None:
        self.send_json(200, self.jobs.get(job_id))

    def delete_job(self, job_id: str) -> None:
        self.send_json(200, self.jobs.cancel(job_id))


def main(argv: list[str] | None = None) -> int:
    parser = base_arg_parser("Reference JobService")
    parser.add_argument("--blobservice-url", required=True, help="e.g. http://127.0.0.1:8001")
    parser.add_argument(
        "--delay",
        type=float,
        default=0.5,
        help="seconds a job stays QUEUED before running (default 0.5)",
    )
    parser.add_argument("--workers", type=int, default=4, help="executor threads (default 4)")
    parser.add_argument(
        "--blob-timeout",
        type=float,
        default=10.0,
        help="connect/read timeout for BlobService calls (default 10)",
    )
    args = parser.parse_args(argv)
    if args.delay < 0 or args.workers < 1:
        parser.error("--delay must be >= 0 and --workers >= 1")

    control = ControlPlane(counters=("executions",), settings={"execution_delay": args.delay})
    service = JobService(
        JobStore(args.data_dir / "jobs"),
        BlobClient(args.blobservice_url, args.blob_timeout),
        control,
    )
    service.resume()
    service.start_workers(args.workers)
    server = ServiceServer((args.host, args.port), JobHandler, app=service, control=control)
    serve_until_signalled(server, on_stop=service.stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
