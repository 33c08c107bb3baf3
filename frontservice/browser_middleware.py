"""The browser pages' middleware, kept off the JSON API's paths.

Sessions, CSRF, the logged-in user and messages serve the pages a browser uses: the admin and
its login. The API under API_PREFIX authenticates every request with a bearer
token (jobs.api.authentication), its views are CSRF-exempt (DRF's APIView), and it never reads
a session, a Django user or a message. On its paths these middleware would only cost time:
building the message storage, reading cookies and wrapping the user came to about a fifth of
the app time of a status request (bench/apptime.py).

Each class here is Django's own, run unchanged on every other path, in the order MIDDLEWARE
gives; on API paths the request goes straight on to the next middleware. Django's admin checks
accept these subclasses in place of its own. Django's CSRF middleware and django-axes' stay as
they are: the deploy check (security.W003) and axes' own check want their dotted paths, and on
an API request they cost little (DRF's views are CSRF-exempt, so CSRF only reads the cookie
header; axes looks up one attribute).
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware

# The versioned JSON API (frontservice/urls.py). The schema and the API docs under /api/ are
# pages for a browser and keep the whole stack.
API_PREFIX = "/api/v1/"


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


class _BrowserOnly:
    def __call__(self, request):
        if is_api(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, _SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _MessageMiddleware):
    pass
