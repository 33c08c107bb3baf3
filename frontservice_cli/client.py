"""FrontService's job API over HTTP: one method per endpoint, every failure a CliError."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO
from urllib.parse import parse_qsl, quote, urlsplit

import requests

from frontservice_cli import __version__
from frontservice_cli.errors import ApiError, ConnectionFailed, ExitCode, TimedOut, UsageError

# (connect, read) seconds. The read timeout is the longest silence between two reads, not the
# whole transfer, so it also fits large uploads and downloads.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

# "[Errno 111] Connection refused" inside requests' long ConnectionError text.
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")

# Problem codes that mean the job itself failed, not the request (exit 1, not 3).
JOB_FAILED_CODES = frozenset({"job_failed", "job_cancelled"})


@dataclass(frozen=True)
class StatusAnswer:
    job: dict
    retry_after: float | None  # seconds, from Retry-After, if the server sent one
    waited: bool  # the server honoured `Prefer: wait` (Preference-Applied)


class Client:
    """A caller of the API at `base_url` with one bearer token."""

    def __init__(self, base_url: str, token: str, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        user_agent = f"frontservice-cli/{__version__} {requests.utils.default_user_agent()}"
        self.session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": user_agent})

    def job_url(self, job_id: str, action: str) -> str:
        # Quoted whole: an id with a slash in it stays one path segment (and is a 404).
        return f"{self.base_url}/api/v1/job/{quote(job_id, safe='')}/{action}"

    @property
    def list_url(self) -> str:
        return f"{self.base_url}/api/v1/job"

    def submit(
        self,
        body: IO[bytes] | Iterable[bytes],
        *,
        content_type: str,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        """POST the input as the raw body; a file-like body with a length is sent with
        Content-Length, an iterable one chunked. Answers the new job's document."""
        headers = {"Content-Type": content_type}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        params = {"callback_url": callback_url} if callback_url is not None else None
        response = self._request("POST", self.list_url, data=body, headers=headers, params=params)
        return _json(response, *JOB_KEYS)

    def status(self, job_id: str, *, wait: int | None = None) -> StatusAnswer:
        """GET the job's status; with `wait`, ask the server to hold it until the job is final."""
        headers = {"Prefer": f"wait={wait}"} if wait else {}
        # The server may hold the request `wait` seconds before it says anything.
        timeout = (CONNECT_TIMEOUT, READ_TIMEOUT + (wait or 0))
        response = self._request(
            "GET", self.job_url(job_id, "status"), headers=headers, timeout=timeout
        )
        applied = response.headers.get("Preference-Applied", "")
        return StatusAnswer(
            job=_json(response, *JOB_KEYS),
            retry_after=_seconds(response.headers.get("Retry-After")),
            waited=bool(wait) and "wait" in applied.lower(),
        )

    def open_output(
        self, job_id: str, *, offset: int = 0, etag: str | None = None
    ) -> requests.Response:
        """GET the output as a stream, from byte `offset` on if not 0 (`Range`; with `If-Range:
        etag`, only if the output is still that version); the caller reads and closes it."""
        headers = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if etag is not None:
                headers["If-Range"] = etag
        return self._request("GET", self.job_url(job_id, "output"), stream=True, headers=headers)

    def list_jobs(
        self, *, statuses: list[str], limit: int | None, next_url: str | None = None
    ) -> dict:
        """One page of the caller's jobs; `next_url` is the previous page's `next`."""
        if next_url is not None:
            # Only the next link's query (its cursor and filters) is used, on our own base URL:
            # behind a proxy the server's idea of its absolute URL can name a host this client
            # cannot reach, and the token is never sent anywhere but --url.
            params = parse_qsl(urlsplit(next_url).query, keep_blank_values=True)
        else:
            params = [("status", status) for status in statuses]
            if limit is not None:
                params.append(("limit", str(limit)))
        return _json(self._request("GET", self.list_url, params=params), *PAGE_KEYS)

    def cancel(self, job_id: str) -> tuple[int, dict]:
        """POST a cancel; answers (200 cancelled | 202 cancelling, the job's document)."""
        response = self._request("POST", self.job_url(job_id, "cancel"))
        return response.status_code, _json(response, *JOB_KEYS)

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        try:
            response = self.session.request(method, url, **kwargs)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise UsageError(f"invalid --url {self.base_url!r}: {exc}") from exc
        except requests.exceptions.InvalidSchema as exc:
            raise UsageError(f"invalid --url {self.base_url!r}: not http(s)") from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectionFailed(f"cannot reach {self.base_url}: connection timed out") from exc
        except requests.exceptions.Timeout as exc:
            raise TimedOut(f"{self.base_url} did not answer within {READ_TIMEOUT} s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(f"cannot reach {self.base_url}: {_reason(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(f"request to {self.base_url} failed: {_reason(exc)}") from exc
        if response.status_code >= 400:
            try:
                raise api_error(response)
            finally:
                response.close()
        return response


def api_error(response: requests.Response) -> ApiError:
    """The error answer as an ApiError whose message a person can read in one line."""
    problem = {}
    if "json" in response.headers.get("Content-Type", ""):
        try:
            document = response.json()
        except ValueError:
            document = None
        if isinstance(document, dict):
            problem = document
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    retry_after = _seconds(response.headers.get("Retry-After"))
    status = response.status_code
    reason = f"HTTP {status}" + (f" {code}" if code else f" {response.reason or ''}".rstrip())
    message = f"{_one_line(detail)} ({reason})" if detail else f"the API answered {reason}"
    if status == 401:
        message += "; check --token, --token-file or FRONTSERVICE_TOKEN"
    if retry_after is not None:
        message += f"; retry after {retry_after:g} s"
    error = ApiError(message, status=status, code=code, detail=detail, retry_after=retry_after)
    if code in JOB_FAILED_CODES:
        error.exit_code = ExitCode.JOB_FAILED
    return error


def _json(response: requests.Response, *required: str) -> dict:
    """The answer's JSON object, which must have the `required` keys."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict) or any(key not in document for key in required):
        raise ApiError(
            f"the API answered HTTP {response.status_code} with an unexpected document",
            status=response.status_code,
            code=None,
            detail=None,
        )
    return document


# What the commands read from a job document and a listing page.
JOB_KEYS = ("id", "status")
PAGE_KEYS = ("results", "next")


def _seconds(value: str | None) -> float | None:
    # Retry-After in delay-seconds; an HTTP-date (which this API does not send) is ignored.
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _reason(exc: Exception) -> str:
    """The useful end of requests' nested error text: "connection refused", not the pool."""
    text = str(exc)
    match = _ERRNO_TEXT.search(text)
    if match:
        return match.group(1).strip().lower()
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "host name not found"
    if "RemoteDisconnected" in text or "closed connection" in text:
        return "the server closed the connection"
    return type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
