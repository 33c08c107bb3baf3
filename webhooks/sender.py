"""One HTTP attempt of a webhook delivery, to the address the SSRF guard checked.

urllib3 is used directly (it is requests' own transport) because it can connect to one IP
address while speaking to the URL's host: `Host` for HTTP, SNI and certificate verification
against the host name for HTTPS. So a DNS answer that changes after the check (rebinding) is
never used. Redirects are not followed (a 3xx is a failed attempt), every call has connect and
read timeouts, and at most RESPONSE_SNIPPET bytes of the answer are read, for the attempt record.
"""

import time
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings

from webhooks.ssrf import Target

# Enough of a receiver's error answer to tell an operator what it said.
RESPONSE_SNIPPET = 256
USER_AGENT = "FrontService-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    address: str
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """A 4xx other than 408/429 says the request itself is refused: retrying cannot help."""
        if self.status_code is None:
            return True  # no answer: connection refused, timeout, TLS failure, ...
        return not (400 <= self.status_code < 500) or self.status_code in (408, 429)


def post(target: Target, *, address: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body` to `target` at `address`; the outcome, never an exception for HTTP trouble."""
    timeout = urllib3.Timeout(
        connect=settings.WEBHOOK_CONNECT_TIMEOUT, read=settings.WEBHOOK_READ_TIMEOUT
    )
    options = {"port": target.port, "timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, **options)
    started = time.monotonic()
    status_code = error = None
    try:
        response = pool.urlopen(
            "POST",
            target.request_target,
            body=body,
            headers={
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                **headers,
            },
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            status_code = response.status
            if not 200 <= status_code < 300:
                snippet = response.read(RESPONSE_SNIPPET, decode_content=False)
                text = snippet.decode("utf-8", "replace").strip()
                error = f"HTTP {status_code}" + (f": {text}" if text else "")
        finally:
            response.close()
    except urllib3.exceptions.HTTPError as exc:
        # Before an answer: no status. While reading an error answer's snippet: the status.
        error = f"{type(exc).__name__}: {_reason(exc)}"
        if status_code is not None:
            error = f"HTTP {status_code} ({error})"
    finally:
        pool.close()
    duration_ms = round((time.monotonic() - started) * 1000)
    return Outcome(address=address, status_code=status_code, error=error, duration_ms=duration_ms)


def _reason(exc: Exception) -> str:
    # urllib3 wraps the socket error; its own text repeats the pool's repr.
    reason = getattr(exc, "reason", None) or exc
    return str(reason)[:200]
