"""Every error the API returns: RFC 9457 problem details with a stable machine-readable `code`."""

import logging

from django.db import DatabaseError
from django.http import JsonResponse
from pymongo.errors import ConnectionFailure
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


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


class InputTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "input_too_large"
    default_detail = "The input is larger than this service accepts."


class DownstreamUnavailable(ApiError):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "downstream_unavailable"
    default_detail = "A downstream service did not answer; try again later."


class DatabaseUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = "The database is unavailable; try again later."


class InvalidIdempotencyKey(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = "Idempotency-Key must be 1 to 255 visible ASCII characters."


class IdempotencyKeyReused(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used for a different request."


class IdempotencyRequestInProgress(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_request_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."


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


def problem(*, status_code: int, code: str, detail: str, title: str | None = None) -> dict:
    return {
        "type": f"urn:frontservice:problem:{code}",
        "title": title or _title(status_code),
        "status": status_code,
        "detail": detail,
        "code": code,
    }


def _title(status_code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


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
    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: log it with the traceback, answer without leaking anything.
        logger.exception("unhandled error", exc_info=exc)
        body = problem(status_code=500, code="internal_error", detail="Internal server error.")
        return Response(body, status=500, content_type=PROBLEM_CONTENT_TYPE)
    detail = exc.detail if isinstance(exc.detail, str) else _flatten(exc.detail)
    body = problem(status_code=response.status_code, code=_code_for(exc), detail=str(detail))
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


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


def json_problem_response(status_code: int, code: str, detail: str) -> JsonResponse:
    """For errors raised outside DRF views (Django's 404/500 handlers)."""
    return JsonResponse(
        problem(status_code=status_code, code=code, detail=detail),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def handler404(request, exception=None):
    return json_problem_response(404, "not_found", "No such resource.")


def handler500(request):
    return json_problem_response(500, "internal_error", "Internal server error.")
