"""RFC 9457 problem documents: every error answer of the service, whichever layer makes it.

Here, below every app, because answers outside the API's views need them too (`/metrics`
refusing a scrape without its token); the API's errors and their stable codes are in
jobs/api/errors.py.
"""

from http import HTTPStatus

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(*, status_code: int, code: str, detail: str, title: str | None = None) -> dict:
    return {
        "type": f"urn:frontservice:problem:{code}",
        "title": title or _title(status_code),
        "status": status_code,
        "detail": detail,
        "code": code,
    }


def _title(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def json_problem_response(status_code: int, code: str, detail: str) -> JsonResponse:
    """A problem document as a plain Django response, whatever the view's renderers."""
    return JsonResponse(
        problem(status_code=status_code, code=code, detail=detail),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
