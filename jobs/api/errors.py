"""Every error the API returns: RFC 9457 problem details with a stable machine-readable `code`."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from pymongo.errors import ConnectionFailure
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from frontservice.problems import json_problem_response
from frontservice.request_body import client_read_failure

logger = logging.getLogger(__name__)


class RetryLater:
    """An error whose request succeeds unchanged after `wait` seconds: answered with
    Retry-After. A mixin, not an ApiError, so the schema's catalogue of codes never lists it."""

    def __init__(self, detail: str | None = None, *, wait: int):
        super().__init__(detail)
        self.wait = wait  # DRF's handler turns it into Retry-After


class ApiError(exceptions.APIException):
    """An error with its own status and code; subclasses only name them."""

    def __init__(self, detail: str | None = None):
        super().__init__(detail=detail or self.default_detail, code=self.default_code)


class JobNotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "job_not_found"
    default_detail = "No such job."


class OutputNotReady(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "output_not_ready"
    default_detail = "The job has not completed yet; poll its status."


class JobFailed(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "job_failed"
    default_detail = "The job ended in an error state and has no output."


class JobCancelled(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "job_cancelled"
    default_detail = "The job was cancelled and has no output."


class JobNotCancellable(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "job_not_cancellable"
    default_detail = "The job is final and cannot be cancelled."


class EmptyInput(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "empty_input"
    default_detail = "The input is empty."


class MissingInput(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "missing_input"
    default_detail = "A multipart request must carry the input in the file field 'input'."


class LengthRequired(ApiError):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"
    default_detail = "Send Content-Length or a chunked body."


class IncompleteBody(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "incomplete_body"
    default_detail = (
        "The body ended before its Content-Length (or before its last chunk); nothing was "
        "kept. Send the request again, whole."
    )


class UploadTimedOut(ApiError):
    status_code = status.HTTP_408_REQUEST_TIMEOUT
    default_code = "upload_timeout"
    default_detail = "The body stopped coming; nothing was kept. Send the request again."


class TooManyUploads(RetryLater, ApiError):
    # Decided before a byte of the body is read: a thread reading a body is what a slow or
    # stalled client holds, so each owner (and the process) may only hold a few.
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_uploads"
    default_detail = "Too many of your uploads are in progress here; retry later."


class InvalidContentLength(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_content_length"
    default_detail = "Content-Length must be a whole number of bytes."


class InputTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "input_too_large"
    default_detail = "The input is larger than this service accepts."


class RequestTooLarge(ApiError):
    # Django's own multipart limits: form fields beyond the input file (DATA_UPLOAD_MAX_*).
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The multipart body has more or larger form fields than this service takes."


class BadRequest(ApiError):
    # Any other request Django refuses as suspicious (e.g. a Host header not allowed).
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request was refused as malformed."


class DownstreamUnavailable(ApiError):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "downstream_unavailable"
    default_detail = "A downstream service did not answer; try again later."


class RangeNotSatisfiable(ApiError):
    status_code = status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE
    default_code = "range_not_satisfiable"
    default_detail = "The range asked for starts past the end of the output."

    def __init__(self, *, size: int | None):
        super().__init__(
            None
            if size is None
            else f"The range asked for starts past the output's end: it has {size} bytes."
        )
        # RFC 9110 15.5.17: the current length, so the client can ask again within it.
        self.headers = {} if size is None else {"Content-Range": f"bytes */{size}"}


class DatabaseUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = "The database is unavailable; try again later."


class InvalidIdempotencyKey(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = "Idempotency-Key must be 1 to 255 visible ASCII characters."


class InvalidCallbackURL(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_callback_url"
    default_detail = (
        "callback_url must be an http(s) URL without credentials whose host resolves only to "
        "public addresses."
    )


class WebhooksNotConfigured(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "webhooks_not_configured"
    default_detail = (
        "Your tenant has no webhook signing secret yet, so callbacks cannot be sent to it; "
        "ask the operator for one."
    )


class IdempotencyKeyReused(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used for a different request."


class IdempotencyRequestInProgress(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_request_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."


class TooManyActiveJobs(RetryLater, ApiError):
    # 429, not 409: nothing is wrong with the request or in conflict with a resource; the owner
    # is sending more than it may have in flight, and the same request succeeds unchanged once
    # some of its jobs finish. 429 with Retry-After is what clients already back off and retry
    # on; a 409 would read as "change your request".
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_active_jobs"
    default_detail = "Too many of your jobs are not final yet; retry later."


class InvalidLimit(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_limit"
    default_detail = "limit must be a whole number from 1 to the maximum page size."


class InvalidCursor(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_cursor"
    default_detail = "cursor is not one this API gave out; use the `next` link as it is."


class InvalidStatusFilter(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_status_filter"
    default_detail = "status names a status that does not exist."


class InvalidDateFilter(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_date_filter"
    default_detail = "created_after and created_before must be ISO 8601 date-times."


# DRF's own exceptions, by class, under our stable codes.
_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_request",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_request",
}


def _code_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, ApiError):
        return exc.default_code
    detail_code = exc.get_codes() if isinstance(exc.detail, str) else None
    # AuthenticationFailed raised with our own code (token_expired, missing_claims, ...).
    if (
        isinstance(exc, exceptions.AuthenticationFailed)
        and isinstance(detail_code, str)
        and detail_code != "authentication_failed"
    ):
        return detail_code
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            return _DRF_CODES[cls]
    return "error"


def exception_handler(exc, context):
    if _database_unreachable(exc):
        logger.warning("database unavailable: %s", type(exc.__cause__ or exc).__name__)
        exc = DatabaseUnavailable()
    elif isinstance(exc, _DJANGO_TOO_LARGE):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        logger.warning("suspicious request: %s", type(exc).__name__)
        exc = BadRequest()
    elif isinstance(exc, Http404):
        # Django's own 404 (DRF raises it for an unknown `?format=`) has no `.detail`; its
        # text is not shown either.
        exc = exceptions.NotFound("No such resource.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied("You may not do this.")
    elif (failure := client_read_failure(exc)) is not None:
        # The client's body stopped coming or was cut off: nothing of it is kept, no job made.
        logger.info("request body %s: %s", failure, type(exc).__name__)
        exc = UploadTimedOut() if failure == "timeout" else IncompleteBody()
    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: log it with the traceback, answer without leaking anything.
        logger.exception("unhandled error", exc_info=exc)
        return json_problem_response(500, "internal_error", "Internal server error.")
    detail = exc.detail if isinstance(exc.detail, str) else _flatten(exc.detail)
    answer = json_problem_response(response.status_code, _code_for(exc), str(detail))
    # Rendered here, not by the view's negotiated renderer (the schema view's YAML, the docs'
    # HTML): an error is problem+json everywhere. DRF's headers (WWW-Authenticate, Retry-After)
    # are kept.
    for name, value in response.headers.items():
        if name.lower() != "content-type":
            answer[name] = value
    for name, value in getattr(exc, "headers", {}).items():  # an error's own (Content-Range)
        answer[name] = value
    return answer


# Django's multipart limits, raised while DRF parses the body (and outside DRF, in handler400).
_DJANGO_TOO_LARGE = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def _database_unreachable(exc: Exception) -> bool:
    # django-mongodb-backend re-raises PyMongo's errors as Django's DatabaseError "from" them.
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    return isinstance(cause, ConnectionFailure)


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)


def handler400(request, exception=None):
    # Django answers a SuspiciousOperation outside DRF (DisallowedHost, its multipart limits on
    # a form) with this; the exception's text is not shown.
    if isinstance(exception, _DJANGO_TOO_LARGE):
        return _api_error_response(RequestTooLarge())
    return _api_error_response(BadRequest())


def handler403(request, exception=None):
    return json_problem_response(403, "permission_denied", "You may not do this.")


def csrf_failure(request, reason: str = ""):
    """settings.CSRF_FAILURE_VIEW: the admin's forms; the API views are exempt from CSRF."""
    return json_problem_response(403, "csrf_failed", "CSRF verification failed.")


def _api_error_response(exc: ApiError) -> JsonResponse:
    return json_problem_response(exc.status_code, exc.default_code, str(exc.detail))


def handler404(request, exception=None):
    return json_problem_response(404, "not_found", "No such resource.")


def handler500(request):
    return json_problem_response(500, "internal_error", "Internal server error.")
