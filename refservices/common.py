"""Pieces shared by the reference services.

HTTP plumbing (JSON responses, request bodies, routing of ``/{collection}/{id}``), streaming
helpers (fixed-length and chunked bodies, never held whole in memory), the ``/_control`` plane
(fault injection and request statistics) and the process bootstrap (argparse, signals).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, ClassVar
from urllib.parse import unquote, urlsplit

# Big enough to keep syscalls cheap, small enough that many concurrent transfers stay in low MiB.
CHUNK_SIZE = 256 * 1024
# Unread request bodies up to this size are drained so the keep-alive connection stays usable;
# larger ones are cheaper to drop together with the connection.
DISCARD_LIMIT = 1024 * 1024
# Chunk-size lines and trailers are tiny; a longer line means a broken or hostile client.
MAX_CHUNK_LINE = 4096
CHUNKED_END = b"0\r\n\r\n"
JSON_TYPE = "application/json"

_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


# --------------------------------------------------------------------------- small helpers


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is an acceptable blob/job id.

    Ids become file names, so "." and "..", which the character class allows, are refused too.
    """
    return _ID_PATTERN.fullmatch(value) is not None and value not in {".", ".."}


def utc_now() -> str:
    """The current time as an ISO-8601 UTC timestamp, e.g. ``2025-01-31T12:00:00.000000Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def remove_quietly(path: str | Path) -> None:
    """Delete a file that may already be gone (cleanup paths must not raise)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` so that readers see the old or the new file, never half.

    The temp file lives in the same directory because os.replace is only atomic within one
    file system. No fsync: this protects against crashes of the process, not of the machine,
    which is enough for a reference service.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def clear_temp_files(directory: Path, pattern: str = "*.tmp") -> None:
    """Remove leftovers of writes interrupted by a crash (they were never visible to readers)."""
    for leftover in directory.glob(pattern):
        remove_quietly(leftover)


# --------------------------------------------------------------------------- errors


class HttpError(Exception):
    """An error answer: ``status`` with the JSON body ``{"code": ..., "detail": ..., **extra}``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


class ClientGone(Exception):
    """The client went away (or stopped sending) in the middle of a request body."""


# --------------------------------------------------------------------------- streaming


def iter_fixed(stream: BinaryIO, length: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield exactly ``length`` bytes of ``stream`` in chunks; a short stream is ClientGone."""
    remaining = length
    while remaining:
        piece = stream.read(min(remaining, chunk_size))
        if not piece:
            raise ClientGone(f"body ended {remaining} bytes before its Content-Length")
        remaining -= len(piece)
        yield piece


def _read_chunk_line(stream: BinaryIO) -> bytes:
    line = stream.readline(MAX_CHUNK_LINE + 1)
    if not line:
        raise ClientGone("chunked body ended before its last chunk")
    if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
        raise HttpError(400, "invalid_chunked_encoding", "chunk line too long")
    return line.rstrip(b"\r\n")


def iter_chunked(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Decode a ``Transfer-Encoding: chunked`` body from ``stream``, yielding its data lazily.

    Each announced chunk is read in pieces of at most ``chunk_size``, so a client sending one
    giant chunk cannot make us buffer it. Chunk extensions and trailers are read and ignored.
    """
    while True:
        size_field = _read_chunk_line(stream).split(b";", 1)[0].strip()
        # int(x, 16) alone would also accept "+1f", "1_f" and spaces.
        if not _HEX_SIZE.fullmatch(size_field):
            raise HttpError(400, "invalid_chunked_encoding", f"bad chunk size {size_field!r}")
        size = int(size_field, 16)
        if size == 0:
            break
        yield from iter_fixed(stream, size, chunk_size)
        if _read_chunk_line(stream) != b"":
            raise HttpError(400, "invalid_chunked_encoding", "chunk data not followed by CRLF")
    while _read_chunk_line(stream) != b"":
        pass  # trailer fields: nothing we use


def iter_file(
    source: BinaryIO, chunk_size: int = CHUNK_SIZE, *, limit: int | None = None
) -> Iterator[bytes]:
    """Yield the rest of an open file in chunks, at most `limit` bytes of it if given."""
    remaining = limit
    while remaining is None or remaining > 0:
        piece = source.read(chunk_size if remaining is None else min(chunk_size, remaining))
        if not piece:
            return
        if remaining is not None:
            remaining -= len(piece)
        yield piece


def frame_chunk(data: bytes) -> bytes:
    """Frame ``data`` as one chunk of a chunked body (empty data would mean "end": refused)."""
    if not data:
        raise ValueError("an empty chunk ends the body; send CHUNKED_END instead")
    return b"%X\r\n%b\r\n" % (len(data), data)


def write_all(chunks: Iterable[bytes], out: BinaryIO) -> int:
    """Write every chunk to ``out``; return the number of bytes written."""
    total = 0
    for chunk in chunks:
        out.write(chunk)
        total += len(chunk)
    return total


# --------------------------------------------------------------------------- control plane


_FAULT_KEYS = {
    "fail_next",
    "status",
    "retry_after",
    "fail_rate",
    "delay",
    "hold",
    "methods",
    "seed",
}


@dataclass
class FaultSettings:
    """What the control plane currently does to API requests (see ControlPlane)."""

    fail_next: int = 0
    status: int = 500
    retry_after: float | str | None = None
    fail_rate: float = 0.0
    delay: float = 0.0
    # At most this many seconds, a request waits until the faults are next set or cleared: a
    # test holds a request exactly as long as it needs to, with no guess at a delay.
    hold: float = 0.0
    methods: list[str] | None = None
    seed: int | None = None
    # Service-specific knobs such as JobService's "execution_delay".
    extras: dict[str, float] = field(default_factory=dict)

    def applies_to(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "fail_next": self.fail_next,
            "status": self.status,
            "retry_after": self.retry_after,
            "fail_rate": self.fail_rate,
            "delay": self.delay,
            "hold": self.hold,
            "methods": self.methods,
            "seed": self.seed,
        }
        return document | self.extras


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _invalid(detail: str) -> HttpError:
    return HttpError(400, "invalid_request", detail)


def _non_negative(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if not _is_number(value) or value < 0:
        raise _invalid(f"{key} must be a non-negative number")
    return float(value)


def parse_fault_settings(body: Any, extra_defaults: dict[str, float]) -> FaultSettings:
    """Validate a ``POST /_control/faults`` body; omitted keys take their defaults.

    Unknown keys are refused so that a typo in a test fails loudly instead of injecting nothing.
    """
    if not isinstance(body, dict):
        raise _invalid("expected a JSON object")
    unknown = set(body) - _FAULT_KEYS - set(extra_defaults)
    if unknown:
        raise _invalid(f"unknown keys: {sorted(unknown)}")
    settings = FaultSettings()
    fail_next = body.get("fail_next", 0)
    if not isinstance(fail_next, int) or isinstance(fail_next, bool) or fail_next < 0:
        raise _invalid("fail_next must be a non-negative integer")
    settings.fail_next = fail_next
    status = body.get("status", 500)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise _invalid("status must be an integer between 400 and 599")
    settings.status = status
    retry_after = body.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, str):
        retry_after = _non_negative(body, "retry_after", 0)
    settings.retry_after = retry_after
    settings.fail_rate = _non_negative(body, "fail_rate", 0.0)
    if settings.fail_rate > 1:
        raise _invalid("fail_rate must be between 0 and 1")
    settings.delay = _non_negative(body, "delay", 0.0)
    settings.hold = _non_negative(body, "hold", 0.0)
    methods = body.get("methods")
    if methods is not None:
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise _invalid("methods must be a list of HTTP method names")
        methods = sorted({m.upper() for m in methods})
    settings.methods = methods
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise _invalid("seed must be an integer")
    settings.seed = seed
    settings.extras = {key: _non_negative(body, key, dflt) for key, dflt in extra_defaults.items()}
    return settings


def _retry_after_header(value: float | str) -> str:
    if isinstance(value, str):
        return value  # e.g. an HTTP-date, passed through for clients that must parse one
    return str(int(value)) if float(value).is_integer() else str(value)


class ControlPlane:
    """Fault injection and request statistics for one service (the ``/_control`` routes).

    ``counters`` names extra per-id counters reported in the stats (JobService: "executions").
    ``settings`` declares extra numeric knobs settable through ``POST /_control/faults`` with
    their defaults, which ``DELETE /_control/faults`` restores.
    """

    def __init__(
        self, *, counters: Iterable[str] = (), settings: dict[str, float] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._counter_names = tuple(counters)
        self._setting_defaults = dict(settings or {})
        self._faults = FaultSettings(extras=dict(self._setting_defaults))
        # Set, and replaced, whenever the faults change: what held requests wait for.
        self._faults_changed = threading.Event()
        # Figures the service reads at the time of asking, shown in the stats by name.
        self.gauges: dict[str, Callable[[], int]] = {}
        self._rng = random.Random()
        self.reset_stats()

    # -- statistics

    def reset_stats(self) -> None:
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._by_id: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._counters = {name: Counter() for name in self._counter_names}
            self._faults_injected = 0

    def record(self, method: str, collection: str, resource_id: str | None) -> None:
        """Count one API request, by route template and, when the id is valid, by id."""
        with self._lock:
            self._requests[f"{method} {collection}"] += 1
            if resource_id is not None:
                self._by_id[resource_id][method] += 1

    def bump(self, counter: str, key: str) -> None:
        """Increment a named per-key counter declared at construction."""
        with self._lock:
            self._counters[counter][key] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            document: dict[str, Any] = {
                "requests": dict(self._requests),
                "by_id": {key: dict(counts) for key, counts in self._by_id.items()},
                "faults_injected": self._faults_injected,
            }
            for name, counts in self._counters.items():
                document[name] = dict(counts)
        for name, gauge in self.gauges.items():
            document[name] = gauge()
        return document

    # -- faults

    def setting(self, name: str) -> float:
        with self._lock:
            return self._faults.extras[name]

    def take_setting(self, name: str) -> float:
        """A one-shot setting: its value, which goes back to its default for the next request."""
        with self._lock:
            value = self._faults.extras[name]
            self._faults.extras[name] = self._setting_defaults[name]
            return value

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults.as_json()

    def set_faults(self, settings: FaultSettings) -> None:
        with self._lock:
            self._faults = settings
            self._faults_changed.set()
            self._faults_changed = threading.Event()
            # A fixed seed makes fail_rate reproducible from the moment it is set.
            self._rng = random.Random(settings.seed)

    def clear_faults(self) -> None:
        self.set_faults(FaultSettings(extras=dict(self._setting_defaults)))

    def before_api_request(self, method: str) -> HttpError | None:
        """Apply the configured delay, and return the injected error if this request must fail.

        The decision is taken under the lock so that ``fail_next: N`` fails exactly N requests
        even when they arrive concurrently; the sleep happens outside it.
        """
        with self._lock:
            faults = self._faults
            if not faults.applies_to(method):
                return None
            delay, hold, changed = faults.delay, faults.hold, self._faults_changed
            if faults.fail_next > 0:
                faults.fail_next -= 1
                inject = True
            else:
                inject = faults.fail_rate > 0 and self._rng.random() < faults.fail_rate
            if inject:
                self._faults_injected += 1
            status, retry_after = faults.status, faults.retry_after
        if delay:
            time.sleep(delay)
        if hold:
            changed.wait(hold)
        if not inject:
            return None
        headers = {} if retry_after is None else {"Retry-After": _retry_after_header(retry_after)}
        return HttpError(
            status, "injected_fault", "fault injected by the control plane", headers=headers
        )

    # -- HTTP

    def handle(self, handler: ServiceHandler, path: str) -> None:
        """Serve one ``/_control/...`` request. These routes are never subject to faults."""
        routes: dict[str, dict[str, Callable[[], None]]] = {
            "/_control/health": {"GET": lambda: handler.send_json(200, {"status": "ok"})},
            "/_control/stats": {"GET": lambda: handler.send_json(200, self.stats())},
            "/_control/reset-stats": {"POST": lambda: self._reset_and_answer(handler)},
            "/_control/faults": {
                "GET": lambda: handler.send_json(200, self.faults()),
                "POST": lambda: self._configure_and_answer(handler),
                "DELETE": lambda: self._clear_and_answer(handler),
            },
        }
        methods = routes.get(path.rstrip("/"))
        if methods is None:
            raise HttpError(404, "not_found", f"no route for {path}")
        action = methods.get(handler.command)
        if action is None:
            raise HttpError(
                405,
                "method_not_allowed",
                f"{handler.command} not allowed on {path}",
                headers={"Allow": ", ".join(sorted(methods))},
            )
        action()

    def _reset_and_answer(self, handler: ServiceHandler) -> None:
        self.reset_stats()
        handler.send_json(200, self.stats())

    def _configure_and_answer(self, handler: ServiceHandler) -> None:
        body = handler.read_json_body()
        self.set_faults(parse_fault_settings(body, self._setting_defaults))
        handler.send_json(200, self.faults())

    def _clear_and_answer(self, handler: ServiceHandler) -> None:
        self.clear_faults()
        handler.send_json(200, self.faults())


# --------------------------------------------------------------------------- HTTP server


class ServiceServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the service state (``app``) and its control plane."""

    # Connection threads must not keep the process alive or delay shutdown.
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[ServiceHandler],
        *,
        app: Any,
        control: ControlPlane,
    ) -> None:
        super().__init__(address, handler)
        self.app = app
        self.control = control


class ServiceHandler(BaseHTTPRequestHandler):
    """Base request handler: routes ``{collection}/{id}`` to methods named in ``operations``.

    Subclasses set ``collection`` (e.g. "/blobs"), ``invalid_id_code`` and ``operations``
    (HTTP method -> name of a method taking the resource id). Operations raise HttpError for
    error answers. The base class takes care of the control plane (stats, faults) and of
    request bodies the operation did not read, so keep-alive connections stay in sync.
    """

    protocol_version = "HTTP/1.1"
    # A client that stalls mid-request must not pin a thread forever.
    timeout = 120
    collection: ClassVar[str] = ""
    invalid_id_code: ClassVar[str] = "invalid_id"
    operations: ClassVar[dict[str, str]] = {}
    server: ServiceServer

    # Every method goes through _dispatch, which answers 404/405 itself.
    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    @property
    def app(self) -> Any:
        return self.server.app

    # -- dispatch

    def _dispatch(self) -> None:
        self._body_pending = self._declares_body()
        self._body_broken = False
        self._response_started = False
        try:
            try:
                self._route()
            except HttpError as error:
                self._answer_error(error)
            except (ClientGone, ConnectionError, TimeoutError):
                raise
            except Exception:
                # A bug or an OS error (e.g. disk full): log it, answer 500, keep serving.
                self.log_error("internal error:\n%s", traceback.format_exc())
                self._answer_error(HttpError(500, "internal_error", "see the service log"))
        except (ClientGone, ConnectionError, TimeoutError) as error:
            # Sending an answer is pointless: the client is gone or stuck.
            self.log_error("connection lost: %r", error)
            self.close_connection = True

    def _route(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_control" or path.startswith("/_control/"):
            self.server.control.handle(self, path)
        else:
            self._dispatch_api(path)

    def _answer_error(self, error: HttpError) -> None:
        if self._response_started:
            # Too late for an error answer: only a dropped connection tells the client.
            self.close_connection = True
        else:
            self.send_error_json(error)

    def _dispatch_api(self, path: str) -> None:
        prefix = self.collection + "/"
        raw_id = path[len(prefix) :]
        if not path.startswith(prefix) or "/" in raw_id:
            raise HttpError(404, "not_found", f"no route for {path}")
        operation = self.operations.get(self.command)
        if operation is None:
            raise HttpError(
                405,
                "method_not_allowed",
                f"{self.command} not allowed on {path}",
                headers={"Allow": ", ".join(sorted(self.operations))},
            )
        resource_id = unquote(raw_id)
        valid = is_valid_id(resource_id)
        control = self.server.control
        control.record(self.command, self.collection, resource_id if valid else None)
        fault = control.before_api_request(self.command)
        if fault is not None:
            # The request is answered without acting on it; its body is consumed first so the
            # client sees a clean error rather than a reset connection.
            self.discard_body()
            raise fault
        if not valid:
            raise HttpError(
                400,
                self.invalid_id_code,
                "ids are 1-128 characters from A-Z a-z 0-9 . _ - (not . or ..)",
            )
        getattr(self, operation)(resource_id)

    # -- request bodies

    def _declares_body(self) -> bool:
        if "Transfer-Encoding" in self.headers:
            return True
        return self.headers.get("Content-Length", "0").strip() not in {"", "0"}

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            self._body_broken = True  # we cannot tell where this body ends
            raise HttpError(400, "invalid_content_length", f"bad Content-Length {raw!r}")
        return int(raw)

    def body_chunks(self) -> Iterator[bytes]:
        """The request body as a lazy iterator of chunks (Content-Length or chunked).

        Raises HttpError 411 right away when the request has neither.
        """
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                self._body_broken = True
                raise HttpError(
                    400,
                    "unsupported_transfer_encoding",
                    f"only chunked is supported, got {encoding!r}",
                )
            source = iter_chunked(self.rfile)
        else:
            length = self._content_length()
            if length is None:
                raise HttpError(
                    411,
                    "length_required",
                    "send a Content-Length or Transfer-Encoding: chunked body",
                )
            source = iter_fixed(self.rfile, length)
        return self._consume(source)

    def _consume(self, source: Iterator[bytes]) -> Iterator[bytes]:
        self._body_pending = False
        # Until the body is fully read, the position of the next request is unknown.
        self._body_broken = True
        yield from source
        self._body_broken = False

    def discard_body(self) -> None:
        """Read and drop the whole request body, if there is one."""
        if not self._body_pending:
            return
        try:
            for _ in self.body_chunks():
                pass
        except HttpError:
            self.close_connection = True

    def read_body(self, limit: int) -> bytes:
        """Read a small request body into memory (for JSON payloads); 413 beyond ``limit``."""
        if not self._body_pending:
            return b""
        length = self._content_length()
        if length is not None and length > limit:
            self._body_broken = True
            raise HttpError(413, "payload_too_large", f"body larger than {limit} bytes")
        parts, size = [], 0
        for chunk in self.body_chunks():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, "payload_too_large", f"body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def read_json_body(self, limit: int = 64 * 1024) -> Any:
        """The request body parsed as JSON; 400 ``invalid_request`` when it is not JSON."""
        raw = self.read_body(limit)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HttpError(400, "invalid_request", f"body is not valid JSON: {error}") from None

    def _settle_body(self) -> None:
        """Before answering, make sure the connection is positioned at the next request."""
        if self._body_pending and not self._body_broken:
            length = None if "Transfer-Encoding" in self.headers else self._safe_length()
            if length is not None and length <= DISCARD_LIMIT:
                self.discard_body()
            else:
                self._body_broken = True
        if self._body_broken:
            self.close_connection = True

    def _safe_length(self) -> int | None:
        try:
            return self._content_length()
        except HttpError:
            return None

    # -- responses

    def _start_response(self, status: int, headers: dict[str, str]) -> None:
        self._settle_body()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._response_started = True

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(document).encode()
        self._start_response(
            status,
            {"Content-Type": JSON_TYPE, "Content-Length": str(len(payload)), **(headers or {})},
        )
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error_json(self, error: HttpError) -> None:
        self.send_json(error.status, error.body(), error.headers)

    def send_empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        # 204 and 304 never have a body, so no Content-Length either (RFC 9110 8.6).
        length = {} if status in (204, 304) else {"Content-Length": "0"}
        self._start_response(status, {**length, **(headers or {})})

    def start_stream(
        self, status: int, content_type: str, length: int, headers: dict[str, str] | None = None
    ) -> None:
        """Send the headers of a streamed body; the caller then writes to ``self.wfile``."""
        self._start_response(
            status,
            {"Content-Type": content_type, "Content-Length": str(length), **(headers or {})},
        )


# --------------------------------------------------------------------------- bootstrap


def base_arg_parser(description: str) -> argparse.ArgumentParser:
    """The command-line options every reference service takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--data-dir", type=Path, required=True, help="where state is kept")
    return parser


def serve_until_signalled(
    server: ServiceServer, *, on_stop: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down promptly.

    Prints ``listening on http://HOST:PORT`` once the socket accepts connections: process
    supervisors and tests wait for that line (or poll ``/_control/health``).
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # serve_forever runs in a thread because shutdown() must be called from another thread
    # than the one serving, and signal handlers only run in the main thread.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-server", daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if on_stop is not None:
            on_stop()
        server.shutdown()
        server.server_close()
        print("stopped", file=sys.stderr, flush=True)
