"""Bearer JWT authentication in DRF's shape: None when there is no bearer header, 401 otherwise."""

from rest_framework import authentication, exceptions

from jobs.tokens import InvalidToken, Principal, verify_token


class JWTAuthentication(authentication.BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request) -> tuple[Principal, str] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            # No bearer credentials: DRF answers 401 not_authenticated.
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <token>'.", code="invalid_header"
            )
        try:
            token = parts[1].decode("ascii")
            return verify_token(token), token
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token.", code="invalid_token") from exc
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc), code=exc.code) from exc

    def authenticate_header(self, request) -> str:
        # Its presence makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="frontservice"'
