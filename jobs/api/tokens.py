"""Verifying (and, for development, minting) the bearer JWTs that identify a job's owner.

RFC 8725 in one paragraph: the token never chooses how it is verified. One algorithm is
configured and a token announcing another is refused before any key is looked up; the key
comes from our configuration (a shared secret, a PEM public key, or our JWKS URL), never from
the token's own `jku`/`x5u`/`jwk`/`x5c` headers; `exp`, `aud` and `sub` (and `iss` when
configured) must be present, and `nbf`/`iat` are honoured, all with a small leeway.
"""

import functools
import json
import logging
import re
import threading
import time
from dataclasses import dataclass

import cachetools
import jwt
import requests
import urllib3
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

# The Job model's tenant_id and sub columns hold at most this many characters.
MAX_OWNER_CLAIM_LENGTH = 200

# Headers with which a token names its own key or where to fetch one. Honouring them would let
# the sender pick the key that verifies it, so a token carrying any of them is refused outright
# (refusing, not ignoring, keeps the intent visible). `crit` lists extensions the verifier must
# understand, and we understand none.
_REFUSED_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})

# The JWK key type (and, for EC, the curve) each asymmetric algorithm verifies with.
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}

# A JWKS document is a few kilobytes; anything much larger is not one.
_MAX_JWKS_BYTES = 512 * 1024


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


class JWKSUnavailable(Exception):
    """The JWKS endpoint did not deliver a usable key set (the cached keys stay in use)."""


class JWKSCache:
    """The signing keys of one JWKS URL, by `kid`, shared by all threads of a process.

    Why not PyJWKClient (PyJWT 2.15): without its per-kid cache, an expired set is fetched
    inline and a failed fetch rejects every token; with it (`cache_keys`), a key the issuer
    removed is never forgotten. Its cooldown counts only successful fetches, so while the
    endpoint is down each unknown kid fetches again, holding the client's one lock (which other
    lookups wait on) for up to the timeout. Here:

    - a known kid is answered from memory, whatever the endpoint's state;
    - an unknown kid fetches the set again, but the endpoint is asked at most once per
      `cooldown` seconds for any reason, so tokens with made-up kids cannot turn into a flood
      of fetches (a caller with a new kid waits for a fetch already in flight, which may bring
      it, instead of starting another);
    - keys older than `max_age` are refreshed in a background thread while the old ones keep
      serving, and a new set replaces the old one whole, so a key the issuer removed stops
      verifying;
    - a failed fetch (timeout, error status, bad JSON, no usable key) keeps the old keys.
    """

    def __init__(
        self, url: str, *, algorithm: str, timeout: float, cooldown: float, max_age: float
    ):
        self.url = url
        self.algorithm = algorithm
        self.timeout = timeout
        self.cooldown = cooldown
        self.max_age = max_age
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch started, successful or not
        self._state = threading.Lock()  # guards the three fields above
        self._fetching = threading.Lock()  # held for the duration of one fetch

    def key(self, kid: str) -> jwt.PyJWK:
        """The key for `kid`, fetching the set again when the kid is new (and allowed to)."""
        with self._state:
            key = self._keys.get(kid)
            stale = self._fetched_at is not None and self._age() >= self.max_age
        if key is not None:
            if stale:
                self._refresh_in_background()
            return key
        # Waiting here means a fetch is in flight; it may be the one that brings this kid.
        with self._fetching:
            with self._state:
                key = self._keys.get(kid)
                if key is not None:
                    return key
                if not self._may_fetch():
                    raise InvalidToken(f"No signing key {kid!r} (JWKS asked recently).")
                self._attempted_at = time.monotonic()
            self._fetch()
        with self._state:
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken(f"No signing key {kid!r}.")
        return key

    def _age(self) -> float:
        return time.monotonic() - (self._fetched_at or 0.0)

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or time.monotonic() - self._attempted_at >= self.cooldown

    def _refresh_in_background(self) -> None:
        with self._state:
            # Non-blocking: a fetch already in flight serves the same purpose.
            if not self._may_fetch() or not self._fetching.acquire(blocking=False):
                return
            self._attempted_at = time.monotonic()

        def refresh() -> None:
            try:
                self._fetch()
            finally:
                self._fetching.release()

        threading.Thread(target=refresh, name="jwks-refresh", daemon=True).start()

    def _fetch(self) -> None:
        """Replace the keys with the endpoint's current set; on any failure keep the old ones."""
        try:
            keys = self._usable_keys(self._download())
        except JWKSUnavailable as exc:
            logger.warning("JWKS %s: %s; keeping %d cached keys", self.url, exc, len(self._keys))
            return
        with self._state:
            self._keys = keys
            self._fetched_at = time.monotonic()

    def _download(self) -> object:
        # The timeout bounds connecting and each read; the deadline, checked after each read of
        # whatever has arrived, bounds a server that trickles its answer byte by byte (so a
        # fetch lasts at most about twice the timeout). No redirects: the keys come from this
        # URL only.
        deadline = time.monotonic() + self.timeout
        try:
            with requests.get(
                self.url,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                headers={"Accept": "application/json"},
            ) as response:
                if response.status_code != 200:
                    raise JWKSUnavailable(f"HTTP {response.status_code}")
                body = bytearray()
                while chunk := response.raw.read1(8192, decode_content=True):
                    body += chunk
                    if len(body) > _MAX_JWKS_BYTES:
                        raise JWKSUnavailable("the answer is too large")
                    if time.monotonic() > deadline:
                        raise JWKSUnavailable(f"no complete answer within {self.timeout} s")
            return json.loads(body)
        # Reading `raw` directly, urllib3's own errors (a read timeout mid-body) are not wrapped
        # in requests' exceptions.
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise JWKSUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise JWKSUnavailable("the answer is not JSON") from exc

    def _usable_keys(self, document: object) -> dict[str, jwt.PyJWK]:
        """The keys that can verify the configured algorithm, by kid; the others are skipped."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JWKSUnavailable("the answer is not a JWK set")
        keys: dict[str, jwt.PyJWK] = {}
        for data in document["keys"]:
            if not isinstance(data, dict) or not self._suits(data) or data["kid"] in keys:
                continue
            try:
                # Bound to the configured algorithm, whatever the token's header says.
                keys[data["kid"]] = jwt.PyJWK(data, algorithm=self.algorithm)
            except jwt.PyJWTError as exc:
                logger.warning("JWKS %s: key %r skipped: %s", self.url, data["kid"], exc)
        if not keys:
            raise JWKSUnavailable(f"no key for {self.algorithm}")
        return keys

    def _suits(self, data: dict) -> bool:
        kid = data.get("kid")
        return (
            isinstance(kid, str)
            and bool(kid)
            and data.get("use", "sig") == "sig"
            and data.get("alg", self.algorithm) == self.algorithm
            and data.get("kty") == _KEY_TYPES.get(self.algorithm[:2])
            and data.get("crv") == _EC_CURVES.get(self.algorithm, data.get("crv"))
            # A published private key is a mistake at the issuer, not something to verify with.
            and "d" not in data
        )


@functools.cache
def _jwks_cache(
    url: str, algorithm: str, timeout: float, cooldown: float, max_age: float
) -> JWKSCache:
    # One cache per process and configuration (tests change the settings between cases).
    return JWKSCache(url, algorithm=algorithm, timeout=timeout, cooldown=cooldown, max_age=max_age)


def _unverified_header(token: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"The token is not valid: {exc}") from exc
    # Checked before any key is looked up, so a token with another algorithm (or naming its own
    # key) never causes a JWKS fetch.
    if header.get("alg") != settings.JWT_ALGORITHM:
        raise InvalidToken(f"The token must be signed with {settings.JWT_ALGORITHM}.")
    refused = sorted(_REFUSED_HEADERS & header.keys())
    if refused:
        raise InvalidToken(f"The token's header must not carry {', '.join(refused)}.")
    return header


def _verification_key(header: dict):
    if settings.JWT_JWKS_URL:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("The token must name its signing key (kid).")
        cache = _jwks_cache(
            settings.JWT_JWKS_URL,
            settings.JWT_ALGORITHM,
            settings.JWT_JWKS_TIMEOUT_SECONDS,
            settings.JWT_JWKS_COOLDOWN_SECONDS,
            settings.JWT_JWKS_MAX_AGE_SECONDS,
        )
        return cache.key(kid)
    if settings.JWT_ALGORITHM.startswith("HS"):
        return _prepared_key(settings.JWT_ALGORITHM, settings.JWT_SIGNING_KEY)
    return _prepared_key(settings.JWT_ALGORITHM, settings.JWT_VERIFYING_KEY)


@functools.lru_cache(maxsize=8)
def _prepared_key(algorithm: str, key: str):
    """The configured key as PyJWT verifies with it (bytes, or a public key object), made once:
    PyJWT would otherwise parse a PEM public key on every request. Keyed by the settings'
    values, so tests that change them get their own."""
    return jwt.get_algorithm_by_name(algorithm).prepare_key(key)


# A client polling a job sends the same token many times a minute, and verifying it (two parses,
# the signature, a dozen claim checks) was the largest part of a status request's own time. A
# token that passed every check is remembered, with the header and the key that verified it,
# for at most VERIFIED_TOKEN_SECONDS. Each later use still checks what can change:
# - its `exp` (plus the leeway) against the clock; nbf and iat in the future were refused when
#   it was verified, and time only moves on;
# - that its key is still the one configured or published: once a JWKS refresh drops the key
#   (or replaces the set), the key lookup answers otherwise and the token is verified afresh,
#   so a withdrawn key stops verifying exactly when it did without this memory.
# Tokens that fail are never kept: a garbage token costs what it always did. Entries are keyed
# by the whole token, signature included, so no other token can hit one. cachetools bounds the
# entries by count and age; it is not thread-safe, hence the lock (gthread workers share it).
VERIFIED_TOKEN_SECONDS = 60
_verified: cachetools.TTLCache = cachetools.TTLCache(maxsize=4096, ttl=VERIFIED_TOKEN_SECONDS)
_verified_lock = threading.Lock()


@receiver(setting_changed)
def _forget_verified_tokens(*, setting: str, **kwargs) -> None:
    # A token verified under another audience, issuer or leeway proves nothing under the new
    # ones (tests change them between cases; a running service never does).
    if setting.startswith("JWT_"):
        with _verified_lock:
            _verified.clear()


def verify_token(token: str) -> Principal:
    """Verify signature, exp, nbf, iat, aud (and iss when configured); return the owner.

    A token verified in the last VERIFIED_TOKEN_SECONDS is taken as verified while its `exp`
    (plus the leeway) has not passed and its key is still the one in use."""
    with _verified_lock:
        remembered = _verified.get(token)
    if remembered is not None:
        principal, valid_until, header, key = remembered
        if time.time() < valid_until and _current_key(header) is key:
            return principal
    header = _unverified_header(token)
    key = _verification_key(header)
    principal, expires_at = _verified_owner(token, key)
    # PyJWT refuses a token once exp <= now - leeway.
    valid_until = expires_at + settings.JWT_LEEWAY_SECONDS
    with _verified_lock:
        _verified[token] = (principal, valid_until, header, key)
    return principal


def _current_key(header: dict):
    """The key that would verify a token with this header now, or None if there is none."""
    try:
        return _verification_key(header)
    except InvalidToken:
        return None


def _verified_owner(token: str, key) -> tuple[Principal, float]:
    """Every check but the header's, from the token's bytes: the owner and the token's exp."""
    required = ["exp", "aud", "sub"] + (["iss"] if settings.JWT_ISSUER else [])
    try:
        claims = jwt.decode(
            token,
            key,
            # Exactly one algorithm: a token can't choose a weaker one ("none", HS with a
            # public key).
            algorithms=[settings.JWT_ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER or None,
            leeway=settings.JWT_LEEWAY_SECONDS,
            # PyJWT's defaults, spelled out: nbf and iat in the future (past the leeway) are
            # refused as "not yet valid", and a sub that is not a string is refused.
            options={
                "require": required,
                "verify_exp": True,
                "verify_nbf": True,
                "verify_iat": True,
                "verify_aud": True,
                "verify_iss": True,
                "verify_sub": True,
                # RSA keys under 2048 bits and HMAC secrets shorter than the hash are refused.
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The token has expired.", "token_expired") from exc
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "sub":
            raise _missing_owner_claims() from exc
        raise InvalidToken(f"The token is not valid: {exc}") from exc
    except jwt.exceptions.InvalidSubjectError as exc:  # a `sub` that is not a string
        raise _missing_owner_claims() from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"The token is not valid: {exc}") from exc
    # PyJWT compares the times as int(value), so "1767607200" would pass; RFC 7519 says
    # NumericDate, a JSON number.
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidToken(f"The token's '{name}' must be a number.")
    tenant_id = claims.get(settings.JWT_TENANT_CLAIM)
    sub = claims["sub"]
    if not (_owner_claim(tenant_id) and _owner_claim(sub)):
        raise _missing_owner_claims()
    if _has_control_characters(tenant_id) or _has_control_characters(sub):
        # ("acme\0x", "y") and ("acme", "x\0y") would share keys built by joining the two (the
        # rate counters' among them), and no identity provider means a NUL or a newline in one.
        raise InvalidToken("The token's owner claims must not contain control characters.")
    return Principal(tenant_id=tenant_id, sub=sub), claims["exp"]


_TIME_CLAIMS = ("exp", "nbf", "iat")


def _missing_owner_claims() -> InvalidToken:
    return InvalidToken(
        f"The token must carry string claims '{settings.JWT_TENANT_CLAIM}' and 'sub' of 1 "
        f"to {MAX_OWNER_CLAIM_LENGTH} characters.",
        "missing_claims",
    )


def _owner_claim(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_OWNER_CLAIM_LENGTH


# C0 controls, DEL and the C1 controls (one regex search, not a Python loop per character).
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _has_control_characters(value: str) -> bool:
    return _CONTROL_CHARACTERS.search(value) is not None


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
