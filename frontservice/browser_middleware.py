"""The browser pages' middleware, kept off the JSON API's paths.

Sessions, CSRF, the logged-in user and messages serve the pages a browser uses: the admin and
its login. The API under API_PREFIX authenticates every request with a bearer
token (jobs.api.authentication), its views are CSRF-exempt (DRF's APIView), and it never reads
a session, a Django user or a message. On its paths these middleware would only cost time:
building the message storage, reading cookies and wrapping the user came to about a fifth of
the app time of a status request (bench/apptime.py).

Each class here is Django's own, run unchanged on every other path, in the order MIDDLEWARE
gives; on API paths the request goes straight on to the next middleware. Django's admin checks
accept these subclasses in place of its own. django-axes' middleware stays as it is (its check
wants its own dotted path), and costs one attribute lookup per request.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware as _CsrfViewMiddleware

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


class CsrfViewMiddleware(_BrowserOnly, _CsrfViewMiddleware):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        # The handler calls process_view itself, outside __call__. The API's views are exempt
        # anyway; skipping it keeps CSRF's state (set in process_request) from being read.
        if is_api(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_BrowserOnly, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _MessageMiddleware):
    pass
