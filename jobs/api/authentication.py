"""Bearer JWT authentication in DRF's shape: None when there is no bearer header, 401 otherwise."""

from rest_framework import authentication, exceptions

from jobs.api.tokens import InvalidToken, Principal, verify_token


class JWTAuthentication(authentication.BaseAuthentication):
    # Compared case-insensitively: RFC 9110 makes the scheme name case-insensitive.
    keyword = b"bearer"

    def authenticate(self, request) -> tuple[Principal, str] | None:
        # Only the Authorization header: a token in the query string (which proxies log) is not
        # looked at, so such a request is simply unauthenticated.
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            # No bearer credentials: DRF answers 401 not_authenticated.
            return None
        if len(parts) != 2:
            raise _failed(
                request,
                "Authorization header must be 'Bearer <token>'.",
                "invalid_header",
                bearer_error="invalid_request",
            )
        try:
            token = parts[1].decode("ascii")
            return verify_token(token), token
        except UnicodeDecodeError as exc:
            raise _failed(request, "Malformed token.", "invalid_token") from exc
        except InvalidToken as exc:
            raise _failed(request, str(exc), exc.code) from exc

    def authenticate_header(self, request) -> str:
        # Its presence makes DRF answer 401 (not 403) to unauthenticated requests. RFC 6750 §3:
        # an `error` attribute only when credentials were sent, naming what was wrong with them.
        error = getattr(request, "bearer_error", None)
        return 'Bearer realm="frontservice"' + (f', error="{error}"' if error else "")


def _failed(
    request, detail: str, code: str, *, bearer_error: str = "invalid_token"
) -> exceptions.AuthenticationFailed:
    request.bearer_error = bearer_error
    return exceptions.AuthenticationFailed(detail, code=code)
