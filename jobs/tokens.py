"""Verifying (and, for development, minting) the bearer JWTs that identify a job's owner."""

import functools
import time
from dataclasses import dataclass

import jwt
from django.conf import settings


@dataclass(frozen=True)
class Principal:
    """The caller: a job belongs to exactly one (tenant_id, sub) pair."""

    tenant_id: str
    sub: str
    is_authenticated = True

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.sub}"


class InvalidToken(Exception):
    def __init__(self, message: str, code: str = "invalid_token"):
        super().__init__(message)
        self.code = code


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # Cached keys: one fetch serves every token until a new kid appears or the cache ages.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def _verification_key(token: str):
    if settings.JWT_JWKS_URL:
        try:
            return _jwks_client(settings.JWT_JWKS_URL).get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"No usable signing key: {exc}") from exc
    if settings.JWT_ALGORITHM.startswith("HS"):
        return settings.JWT_SIGNING_KEY
    return settings.JWT_VERIFYING_KEY


def verify_token(token: str) -> Principal:
    """Verify signature, exp, aud (and iss when configured); return the owner it names."""
    required = ["exp", "aud", "sub"] + (["iss"] if settings.JWT_ISSUER else [])
    try:
        claims = jwt.decode(
            token,
            _verification_key(token),
            # Exactly one algorithm: a token can't choose a weaker one ("none", HS with a
            # public key).
            algorithms=[settings.JWT_ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER or None,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The token has expired.", "token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"The token is not valid: {exc}") from exc
    tenant_id = claims.get(settings.JWT_TENANT_CLAIM)
    sub = claims.get("sub")
    if not (isinstance(tenant_id, str) and tenant_id and isinstance(sub, str) and sub):
        raise InvalidToken(
            f"The token must carry non-empty string claims '{settings.JWT_TENANT_CLAIM}' and "
            "'sub'.",
            "missing_claims",
        )
    return Principal(tenant_id=tenant_id, sub=sub)


def issue_token(
    *,
    tenant_id: str,
    sub: str,
    lifetime_seconds: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
    signing_key: str | None = None,
    extra_claims: dict | None = None,
) -> str:
    """Mint a token with the configured algorithm (development and tests)."""
    now = int(time.time())
    claims = {
        settings.JWT_TENANT_CLAIM: tenant_id,
        "sub": sub,
        "aud": audience or settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + lifetime_seconds,
        **({"iss": issuer or settings.JWT_ISSUER} if (issuer or settings.JWT_ISSUER) else {}),
        **(extra_claims or {}),
    }
    key = signing_key or settings.JWT_SIGNING_KEY
    return jwt.encode(claims, key, algorithm=settings.JWT_ALGORITHM)
