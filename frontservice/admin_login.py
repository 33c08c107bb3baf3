"""The admin login's throttling by django-axes: who the client is, and the refusal it gets."""

from django.conf import settings

from frontservice.problems import json_problem_response


def client_address(request) -> str:
    """The client's address: behind ADMIN_LOGIN_PROXY_COUNT proxies, the one the outermost of
    them saw (the entries before it are the client's own to write, so they are not trusted)."""
    hops = settings.ADMIN_LOGIN_PROXY_COUNT
    if hops:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
        if len(entries) >= hops:
            return entries[-hops]
    return request.META.get("REMOTE_ADDR", "")


def locked_out(request, response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: a problem document, not axes' HTML page."""
    answer = json_problem_response(
        429,
        "too_many_login_failures",
        "Too many failed logins for this user or from this address; try again later.",
    )
    answer["Retry-After"] = str(round(settings.AXES_COOLOFF_TIME * 3600))
    return answer
