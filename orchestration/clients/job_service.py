"""Client for jobservice: submit, inspect and cancel jobs by id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import requests
from django.conf import settings

from .http import (
    DownstreamError,
    error_from_response,
    is_success,
    json_object,
    send,
    service_url,
    unexpected_body,
)

SERVICE = "jobservice"

JobStatus = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
JOB_STATUSES: frozenset[str] = frozenset(get_args(JobStatus))
FINAL_STATUSES: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class RemoteJobNotFound(DownstreamError):
    """jobservice has no job with this id."""


@dataclass(frozen=True)
class RemoteJob:
    """The part of a jobservice job document FrontService relies on."""

    id: str
    status: JobStatus
    error: str | None

    def __post_init__(self) -> None:
        if self.status not in JOB_STATUSES:
            raise ValueError(f"unknown job status: {self.status!r}")

    @property
    def is_final(self) -> bool:
        """Whether the job can no longer change status."""
        return self.status in FINAL_STATUSES


def submit_job(job_id: str, *, blob_id: str) -> RemoteJob:
    """Create job `job_id` for blob `blob_id`, or return it if it already exists."""
    response = send(SERVICE, "PUT", _job_url(job_id), json={"blob_id": blob_id})
    if not is_success(response):
        # 409 job_conflict and 422 blob_not_found come back as non-retryable errors with `code`.
        raise error_from_response(SERVICE, response)
    return _remote_job(response, json_object(SERVICE, response))


def get_job(job_id: str) -> RemoteJob:
    """Fetch job `job_id`; raises RemoteJobNotFound when it does not exist."""
    response = send(SERVICE, "GET", _job_url(job_id))
    if not is_success(response):
        error = error_from_response(SERVICE, response)
        # Only the service's own "not found" counts: a 404 from a misrouted proxy or a wrong
        # base URL says nothing about whether the job exists.
        if error.status_code == 404 and error.code == "job_not_found":
            raise RemoteJobNotFound(SERVICE, error.message, status_code=404, code=error.code)
        raise error
    return _remote_job(response, json_object(SERVICE, response))


def cancel_job(job_id: str) -> RemoteJob:
    """Cancel job `job_id`; a job that already finished is returned as it is.

    Raises RemoteJobNotFound when it does not exist.
    """
    response = send(SERVICE, "DELETE", _job_url(job_id))
    if is_success(response):
        return _remote_job(response, json_object(SERVICE, response))
    error = error_from_response(SERVICE, response)
    if error.status_code == 404 and error.code == "job_not_found":
        # As for get_job: only the service's own "not found" says the job does not exist.
        raise RemoteJobNotFound(SERVICE, error.message, status_code=404, code=error.code)
    if error.status_code == 409 and error.code == "job_final":
        # Cancelling a finished job is not a failure for the caller: the final state is the
        # answer it needs, so the document the service attached is returned instead.
        document = _error_document(response).get("job")
        if isinstance(document, dict):
            return _remote_job(response, document)
        # Without the document the non-retryable job_final error still tells the caller the job
        # is over; repeating the cancel would only get the same answer.
    raise error


def _job_url(job_id: str) -> str:
    return service_url(settings.JOBSERVICE_URL, "jobs", job_id)


def _remote_job(response: requests.Response, document: dict[str, Any]) -> RemoteJob:
    job_id, status, error = document.get("id"), document.get("status"), document.get("error")
    if not isinstance(job_id, str) or not isinstance(status, str):
        raise unexpected_body(SERVICE, response, "job document without id and status")
    if error is not None and not isinstance(error, str):
        raise unexpected_body(SERVICE, response, "job error is not a string")
    if status not in JOB_STATUSES:
        # Retryable like any unexpected 2xx body: most likely a jobservice deploy introduced a
        # status this version does not know yet, and failing the job permanently would be wrong.
        raise unexpected_body(SERVICE, response, f"unknown job status {status!r}")
    return RemoteJob(id=job_id, status=cast(JobStatus, status), error=error)


def _error_document(response: requests.Response) -> dict[str, Any]:
    # A 409 body that is not a JSON object is handled like a missing job document.
    try:
        return json_object(SERVICE, response)
    except DownstreamError:
        return {}
