"""Streaming uploads and downloads with progress bars, and the live status line while waiting.

Everything here goes to stderr, so stdout stays the command's result (an id, a document, the
output's bytes).
"""

import contextlib
import itertools
import os
import re
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TextIO

import requests
from tqdm import tqdm

from frontservice_cli.errors import ConnectionFailed, UsageError

CHUNK_SIZE = 1024 * 1024


def progress_bar(*, total: int | None, desc: str, enabled: bool) -> tqdm:
    """A byte counter on stderr; `disable` makes every call on it a no-op."""
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
    )


class UploadReader:
    """A file object for requests to send: `len()` gives it the Content-Length, and every
    `read(n)` of the block it streams moves the bar. The file is never read whole."""

    def __init__(self, raw: IO[bytes], size: int, bar: tqdm):
        self._raw = raw
        self._size = size
        self._bar = bar

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._bar.update(len(chunk))
        return chunk


def chunked_body(raw: IO[bytes], bar: tqdm) -> Iterator[bytes]:
    """A body of unknown length (a pipe on stdin): requests sends an iterator chunked."""
    while chunk := raw.read(CHUNK_SIZE):
        bar.update(len(chunk))
        yield chunk


@contextlib.contextmanager
def open_input(name: str, *, progress: bool):
    """The body to POST for FILE (`-` is stdin): a sized reader, or chunks when unsized."""
    if name == "-":
        raw = sys.stdin.buffer
        close = False
    else:
        try:
            raw = open(name, "rb")  # noqa: SIM115 (closed below, after the upload)
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from exc
        close = True
    try:
        size = _regular_file_size(raw)
        if size is None and name != "-":
            raise UsageError(f"cannot read {name}: not a regular file")
        with progress_bar(total=size, desc="upload", enabled=progress) as bar:
            yield chunked_body(raw, bar) if size is None else UploadReader(raw, size, bar)
    finally:
        if close:
            raw.close()


def _regular_file_size(raw: IO[bytes]) -> int | None:
    # stdin redirected from a file (`< input.bin`) has a size too, from where it is read on.
    try:
        info = os.fstat(raw.fileno())
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        return max(info.st_size - raw.tell(), 0)
    except OSError:
        return info.st_size


# Connection breaks one download survives: each time it asks for the rest (`Range`) of the version
# it was reading (`If-Range` with its ETag), after a pause that grows a little each time.
RESUMES = 5
RESUME_PAUSE = 0.5
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class _Interrupted(Exception):
    """The connection broke after `copied` bytes of this response."""

    def __init__(self, copied: int, cause: Exception):
        super().__init__(copied)
        self.copied = copied
        self.cause = cause


def download(
    open_at: Callable[[int, str | None], requests.Response],
    destination: str | None,
    *,
    progress: bool,
) -> int:
    """Write the output to stdout (None or `-`), or to `destination` through a temporary file
    beside it, renamed only once every byte has arrived. Answers the size.

    `open_at(offset, etag)` opens the output from byte `offset` on (a Range request, If-Range
    `etag`). A connection that breaks is resumed where it stopped, up to RESUMES times, when the
    server sent an ETag and accepts ranges; the size is checked against the one announced."""
    response = open_at(0, None)
    total = _content_length(response)
    with progress_bar(total=total, desc="download", enabled=progress) as bar:
        if destination in (None, "-"):
            return _fetch(open_at, response, sys.stdout.buffer, bar, flush=True)
        target = Path(destination)
        if target.is_dir():
            response.close()
            raise UsageError(f"cannot write {destination}: it is a directory")
        try:
            descriptor, temp_name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".part"
            )
        except OSError as exc:
            response.close()
            raise UsageError(f"cannot write {destination}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(descriptor, "wb") as out:
                size = _fetch(open_at, response, out, bar)
                out.flush()
                os.fsync(out.fileno())
            # mkstemp makes the file private (0600); give it the mode a new file would get.
            os.chmod(temp_name, 0o666 & ~_umask())
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        return size


def _fetch(open_at, response: requests.Response, out: IO[bytes], bar: tqdm, **kwargs) -> int:
    """Copy the output to `out`, resuming after a broken connection; answers the size."""
    total = _content_length(response)
    etag = response.headers.get("ETag")
    resumable = etag is not None and response.headers.get("Accept-Ranges") == "bytes"
    size = 0
    for attempt in range(RESUMES + 1):
        try:
            with response:
                size += _copy(response, out, bar, **kwargs)
            break
        except _Interrupted as cut:
            size += cut.copied
            if not resumable or attempt == RESUMES:
                # urllib3 checks the byte count against Content-Length: a short body lands
                # here too. (A file destination is then removed by download().)
                raise ConnectionFailed(
                    f"the connection broke after {size} bytes of the output"
                ) from cut.cause
        time.sleep(RESUME_PAUSE * (attempt + 1))
        response = open_at(size, etag)
        if response.status_code != 206 or _range_start(response) != size:
            # Not the rest of the version we have (If-Range said it changed, or the server
            # ignored the range): the bytes already written cannot be trusted to go with it.
            response.close()
            raise ConnectionFailed(
                f"the connection broke after {size} bytes of the output, and the rest could "
                f"not be fetched (HTTP {response.status_code}); run the command again"
            )
    if total is not None and size != total:
        raise ConnectionFailed(f"the output has {size} bytes, not the {total} announced")
    return size


def _range_start(response: requests.Response) -> int | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _copy(response: requests.Response, out: IO[bytes], bar: tqdm, *, flush: bool = False) -> int:
    size = 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            try:
                out.write(chunk)
                if flush:
                    out.flush()
            except BrokenPipeError:
                raise
            except OSError as exc:
                raise UsageError(f"cannot write the output: {exc.strerror or exc}") from exc
            size += len(chunk)
            bar.update(len(chunk))
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
        raise _Interrupted(size, exc) from exc
    return size


def _content_length(response: requests.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _umask() -> int:
    # The only way to read the umask is to set it; this process is single-threaded here.
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StatusLine:
    """The job's status while waiting. On a terminal one line rewritten in place, with the
    seconds ticking while the server holds the request; elsewhere one line per change."""

    def __init__(self, job_id: str, *, live: bool, stream: TextIO | None = None):
        self._job_id = job_id
        self._live = live
        self._stream = stream or sys.stderr
        self._status: str | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner = itertools.cycle("|/-\\")
        self._ticker = threading.Thread(target=self._tick, daemon=True) if live else None

    def __enter__(self) -> "StatusLine":
        if self._ticker is not None:
            self._ticker.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._live and self._status is not None:
            with self._lock:
                self._stream.write("\n")
                self._stream.flush()

    def show(self, status: str) -> None:
        changed = status != self._status
        self._status = status
        if self._live:
            self._render()
        elif changed:
            print(f"job {self._job_id}: {status}", file=self._stream, flush=True)

    def _render(self) -> None:
        elapsed = int(time.monotonic() - self._started)
        with self._lock:
            self._stream.write(
                f"\r\x1b[K{next(self._spinner)} job {self._job_id}: {self._status} ({elapsed} s)"
            )
            self._stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1):
            if self._status is not None:
                self._render()
