"""Shared HTTP plumbing for the downstream clients: session, timeouts, error classification."""

from __future__ import annotations

import email.utils
import json
import math
import os
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from frontservice.downstream import DownstreamError
from frontservice.metrics import timed_downstream

# Error messages end up in logs and job records; downstream text is clipped so a misbehaving
# service cannot flood them.
MESSAGE_LIMIT = 200
# Enough for any JSON error document the services send; larger error bodies are not parsed.
ERROR_BODY_LIMIT = 64 * 1024
RETRYABLE_STATUSES = frozenset({408, 429})
# ConnectTimeout is both a ConnectionError and a Timeout; ChunkedEncodingError is what a connection
# dropped mid-body (including a short read against Content-Length) becomes. Anything else from
# requests (bad URL, invalid header, ...) is a bug or misconfiguration that a retry cannot fix.
TRANSIENT_EXCEPTIONS: tuple[type[requests.RequestException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


_session: requests.Session | None = None
_session_pid: int | None = None
_session_lock = threading.Lock()


def session() -> requests.Session:
    """Return this process's shared Session, creating a new one after a fork."""
    global _session, _session_pid
    pid = os.getpid()
    with _session_lock:
        # django-q2 forks its workers: a pool inherited from the parent shares sockets with it,
        # so a child must never reuse it. The inherited session is dropped, not closed, because
        # closing would tear down connections the parent may still be using.
        if _session is None or _session_pid != pid:
            _session = requests.Session()
            _session_pid = pid
        return _session


def timeouts() -> tuple[float, float]:
    """Return the (connect, read) timeout from settings, read per call so overrides apply."""
    return (
        float(settings.DOWNSTREAM_CONNECT_TIMEOUT),
        float(settings.DOWNSTREAM_READ_TIMEOUT),
    )


def service_url(base: str, *segments: str) -> str:
    """Join a configured base URL and path segments, each segment escaped as one path part."""
    for segment in segments:
        # quote() leaves dot segments alone and URL normalisation would then climb out of the
        # resource path, so they are refused along with the empty id.
        if segment in ("", ".", ".."):
            raise ValueError(f"invalid path segment: {segment!r}")
    return "/".join([base.rstrip("/"), *(quote(s, safe="") for s in segments)])


@timed_downstream  # latency and outcome of every downstream call (frontservice/metrics.py)
def send(service: str, method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send one request with the configured timeouts and no redirects; transport errors raise."""
    try:
        # Redirects are not part of either contract; following one would re-send a PUT body
        # to wherever the Location points, so a 3xx surfaces as an error instead.
        return session().request(method, url, timeout=timeouts(), allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        raise error_from_exception(service, exc) from exc


def is_success(response: requests.Response) -> bool:
    """Return whether the response has a 2xx status."""
    return 200 <= response.status_code < 300


def error_from_exception(service: str, exc: requests.RequestException) -> DownstreamError:
    """Classify a requests exception: transport failures are retryable, misuse is not."""
    return DownstreamError(
        service,
        clip(f"{type(exc).__name__}: {exc}"),
        retryable=isinstance(exc, TRANSIENT_EXCEPTIONS),
    )


def error_from_response(service: str, response: requests.Response) -> DownstreamError:
    """Turn a non-2xx response into a DownstreamError carrying the body's code and detail."""
    status = response.status_code
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    code, detail = _error_code_and_detail(response)
    message = f"HTTP {status}"
    if code:
        message += f" {code}"
    if detail:
        message += f": {detail}"
    return DownstreamError(
        service,
        clip(message),
        status_code=status,
        retryable=retryable,
        retry_after=parse_retry_after(response.headers.get("Retry-After")) if retryable else None,
        code=code,
    )


def json_object(service: str, response: requests.Response) -> dict[str, Any]:
    """Parse a 2xx body that must be a JSON object."""
    # Garbage on a 2xx is treated as retryable: the usual cause is a proxy or load balancer
    # answering with an HTML page while the service restarts, which clears up by itself. Every
    # call here is idempotent (PUT/GET/DELETE by id), so a retry cannot duplicate work, and the
    # caller's retry budget still bounds a service that is persistently broken.
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise unexpected_body(service, response, "body is not a JSON object")
    return body


def unexpected_body(service: str, response: requests.Response, problem: str) -> DownstreamError:
    """Build the (retryable) error for a 2xx whose body does not match the contract."""
    return DownstreamError(
        service,
        clip(f"HTTP {response.status_code} with unexpected body: {problem}"),
        status_code=response.status_code,
        retryable=True,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header (delay-seconds or HTTP-date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are always GMT; parsedate returns a naive datetime for "-0000".
        when = when.replace(tzinfo=UTC)
    # A date in the past means "now", not a negative delay.
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Collapse whitespace (no log-line injection) and cap the length."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_code_and_detail(response: requests.Response) -> tuple[str | None, str | None]:
    # Only the first chunk is read: a streamed error response could be arbitrarily large, and
    # the body is only interesting when it is a small JSON error document.
    try:
        raw = next(response.iter_content(ERROR_BODY_LIMIT), b"")
        body = json.loads(raw)
    except (requests.RequestException, ValueError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    code, detail = body.get("code"), body.get("detail")
    code = clip(code, 64) if isinstance(code, str) and code else None
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, separators=(",", ":"))
    return code, clip(detail) if detail else None
