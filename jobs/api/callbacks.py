"""The `callback_url` of POST /api/v1/job: taken from the query or the multipart form, checked.

The query parameter is checked (syntax, then the SSRF guard's resolution) before a byte of the
body is read. A multipart form field can only be read with the body; it is checked then.
"""

from jobs.api import errors
from webhooks import ssrf

FIELD = "callback_url"


def callback_url_from_query(request) -> str | None:
    """The checked `?callback_url=`, None without one; InvalidCallbackURL if refused."""
    return _checked(request.query_params.getlist(FIELD))


def callback_url_from_form(request, *, from_query: str | None) -> str | None:
    """The callback of a multipart request: its form field, or the query's (they must agree)."""
    if not request.content_type.startswith("multipart/form-data"):
        return from_query
    from_form = _checked(request.data.getlist(FIELD))
    if from_form is None:
        return from_query
    if from_query is not None and from_form != from_query:
        raise errors.InvalidCallbackURL(
            "callback_url is given in the query and the form, differently."
        )
    return from_form


def _checked(values: list[str]) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise errors.InvalidCallbackURL("callback_url is given more than once.")
    try:
        ssrf.check_url(values[0])
    except ssrf.RefusedURL as exc:
        raise errors.InvalidCallbackURL(f"callback_url refused: {exc}") from exc
    return values[0]
