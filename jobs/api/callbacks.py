"""The `callback_url` of POST /api/v1/job: taken from the query or the multipart form, checked.

The query parameter is checked (syntax, then the SSRF guard's resolution) before a byte of the
body is read. A multipart form field can only be read with the body; it is checked then.
"""

import logging

from jobs.api import errors
from webhooks import signing, ssrf

logger = logging.getLogger(__name__)

FIELD = "callback_url"


def callback_url_from_query(request) -> str | None:
    """The checked `?callback_url=`, None without one; InvalidCallbackURL if refused."""
    return _checked(request.query_params.getlist(FIELD), tenant_id=request.user.tenant_id)


def callback_url_from_form(request, *, from_query: str | None) -> str | None:
    """The callback of a multipart request: its form field, or the query's (they must agree)."""
    if not request.content_type.startswith("multipart/form-data"):
        return from_query
    from_form = _checked(request.data.getlist(FIELD), tenant_id=request.user.tenant_id)
    if from_form is None:
        return from_query
    if from_query is not None and from_form != from_query:
        raise errors.InvalidCallbackURL(
            "callback_url is given in the query and the form, differently."
        )
    return from_form


def _checked(values: list[str], *, tenant_id: str) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise errors.InvalidCallbackURL("callback_url is given more than once.")
    if not signing.can_sign_for(tenant_id):
        # Production has no shared secret: a tenant without its own could not verify anything.
        raise errors.WebhooksNotConfigured()
    try:
        ssrf.check_url(values[0])
    except ssrf.RefusedURL as exc:
        # The caller learns the rule its URL broke, never what our resolver made of its host
        # (that would map internal names); the whole story goes to the log.
        logger.info("callback_url refused: %s", exc.detail)
        raise errors.InvalidCallbackURL(f"callback_url refused: {exc}") from exc
    return values[0]
