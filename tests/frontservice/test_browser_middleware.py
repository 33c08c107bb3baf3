"""frontservice/browser_middleware.py: sessions, the logged-in user and messages run for the
browser's pages and are skipped on the JSON API's paths.

The admin working through them (login, CSRF refusals, messages after an action) is tested in
tests/jobs/test_admin.py; here each middleware is called as Django's handler calls it.
"""

import pytest
from django.http import HttpResponse

from frontservice.browser_middleware import (
    AuthenticationMiddleware,
    MessageMiddleware,
    SessionMiddleware,
)


def _seen_by_the_view(rf, path: str, method: str = "get") -> dict:
    seen = {}

    def view(request):
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
        )
        return HttpResponse("ok")

    # In MIDDLEWARE's order.
    stack = SessionMiddleware(AuthenticationMiddleware(MessageMiddleware(view)))
    request = getattr(rf, method)(path)
    response = stack(request)
    assert response.status_code == 200
    return seen


@pytest.mark.parametrize(
    "path", ["/api/v1/job", "/api/v1/job/0c6e0f0e-0000-4000-8000-000000000000"]
)
def test_api_paths_skip_the_browser_middleware(rf, path):
    assert _seen_by_the_view(rf, path) == {
        "session": False,
        "user": False,
        "messages": False,
    }


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/api/docs/", "/api/schema/"])
def test_every_other_path_keeps_them(rf, path):
    assert _seen_by_the_view(rf, path) == {
        "session": True,
        "user": True,
        "messages": True,
    }
