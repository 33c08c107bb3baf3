"""The one error type of every call FrontService makes to another service.

Here, below the apps, because the worker tier's clients (orchestration/clients/) and the
webhook sender both raise it, and frontservice/backoff.py retries on it.
"""


class DownstreamError(Exception):
    """A call to another service failed (BlobService, JobService, a webhook receiver);
    `retryable` tells the caller whether retrying can help."""

    # Every argument after `message` has a default so BaseException's pickling (which re-calls
    # the class with `args`, then restores __dict__) works when the error crosses a process.
    def __init__(
        self,
        service: str,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(service, message)
        self.service = service
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code

    def __str__(self) -> str:
        text = f"{self.service}: {self.message}"
        if self.retryable:
            hint = "retryable" if self.retry_after is None else f"retry after {self.retry_after:g}s"
            text += f" ({hint})"
        return text
