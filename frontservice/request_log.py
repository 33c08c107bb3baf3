"""Structured logs: a JSON formatter for every logger, and the request id that ties lines together.

Not named ``logging.py``: ``frontservice.logging`` beside the standard library's ``logging`` reads
as if one shadowed the other.

One JSON object per line. Fields given with ``extra=`` are included when they are plain values
(str, int, float, bool, None), so an object a library passes along (Django's ``request``) is never
serialised: its repr would carry the query string. Nothing here reads headers or bodies, and the
access line is built from the method, the route and the path alone, so no token and no input
byte can reach a log.

The logging context (``log_context``, ``log_bind``) carries fields every line of a unit of work
shares: the request id of an API request, and, in a worker task or a reconciler pass over one
job, the job id and the id of the request that created the job, so one id follows a job from the
user's POST through every process that touches it.
"""

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

# Never mutated: each change sets a new dict, so a reset restores the fields of the outer scope.
_context: ContextVar[dict] = ContextVar("log_context", default={})  # noqa: B039

# An incoming X-Request-ID is kept only if it is short and harmless in a log line and a header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID_HEADER = "X-Request-ID"

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Passed by Django with its request log lines; never logged (the repr carries the query string).
_NEVER = frozenset({"request", "server_time"})
_PLAIN = (str, int, float, bool, type(None))

access_logger = logging.getLogger("frontservice.access")


def _fields(record: logging.LogRecord) -> dict:
    fields = {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRS and key not in _NEVER and isinstance(value, _PLAIN)
    }
    for key, value in _context.get().items():
        if value and key not in fields:
            fields[key] = value
    return fields


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add these fields to every log line written inside the block (this thread or task)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def log_bind(**fields: str | None) -> None:
    """Add these fields to the rest of the current context (the request's, the task's): a POST's
    lines after the job is recorded, its access line among them, carry the job id."""
    _context.set({**_context.get(), **fields})


def current_request_id() -> str | None:
    """The id of the request being answered (None outside a request)."""
    return _context.get().get("request_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    """For people reading a terminal: the classic line, then the extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if not fields:
            return text
        head, _, tail = text.partition("\n")  # a traceback stays below the line
        return f"{head} {fields}" + (f"\n{tail}" if tail else "")


def request_id_from(value: str | None) -> str:
    """The caller's request id if it is safe to echo and log, else a new one."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Request id in, request id out, and one access line per request.

    First in MIDDLEWARE, so it also sees what the middleware below it answers by itself
    (static files, a refused Host).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        started = time.perf_counter()
        # A fresh context per request: nothing bound by a previous request on this thread.
        token = _context.set({"request_id": request_id})
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            access_logger.info(
                "request",
                extra=access_fields(request, response.status_code, started),
            )
            return response
        finally:
            _context.reset(token)


def access_fields(request, status: int, started: float) -> dict:
    """The access line: who asked what, how it went, how long it took; never headers or bodies."""
    match = getattr(request, "resolver_match", None)
    fields = {
        "event": "request",
        "method": request.method,
        "route": route_name(request),
        "path": request.path,  # without the query string
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    # DRF puts its authenticated principal on the Django request. The session middleware's lazy
    # user is left alone, so an anonymous request never loads a session for a log line.
    user = vars(request).get("user")
    if not _is_lazy(user) and getattr(user, "tenant_id", None) is not None:
        fields["tenant"] = user.tenant_id
        fields["sub"] = user.sub
    job_id = match.kwargs.get("job_id") if match else None
    if job_id:
        fields["job_id"] = str(job_id)[:64]
    return fields


def route_name(request) -> str:
    """The URL pattern's name, never the raw path: no ids in metric labels or log routes."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    from django.conf import settings

    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unmatched"


def _is_lazy(user) -> bool:
    from django.utils.functional import LazyObject

    # type(), not isinstance(): isinstance would evaluate the lazy object through __class__.
    return issubclass(type(user), LazyObject)
