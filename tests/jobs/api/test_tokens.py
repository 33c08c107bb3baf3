"""jobs/api/tokens.py: token verification by configuration, as plain function calls: HS256 (the
default), RS256 with a PEM key, RS256 by JWKS.

What the API answers to the same tokens (401, the problem document, the challenge, nothing
written) is tests/jobs/api/test_authentication.py. The JWKS tests use a real HTTP server on the
loopback interface whose key set, speed and availability they change, and which counts what it
is asked.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jobs.api import tokens
from jobs.api.tokens import InvalidToken, Principal, issue_token, verify_token


class KeyPair:
    def __init__(self, private_key):
        self.private_key = private_key
        self.private_pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self, kid: str, **fields) -> dict:
        public_key = self.private_key.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
        else:
            data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public_key))
        return {**data, "kid": kid, "use": "sig", **fields}

    def sign(self, claims: dict, kid: str | None = None, algorithm: str = "RS256", **headers):
        if kid is not None:
            headers["kid"] = kid
        return jwt.encode(claims, self.private_key, algorithm, headers=headers or None)


def _rsa() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def rsa_key() -> KeyPair:
    return _rsa()


@pytest.fixture(scope="module")
def next_rsa_key() -> KeyPair:
    """The issuer's next key, for rotations."""
    return _rsa()


@pytest.fixture(scope="module")
def attacker_key() -> KeyPair:
    return _rsa()


def _claims(**extra):
    now = int(time.time())
    return {"tenantId": "acme", "sub": "alice", "aud": "frontservice", "exp": now + 60, **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_by_hand(claims: dict, secret: bytes, **header) -> str:
    """HS256 over any secret: PyJWT itself refuses a PEM key as an HMAC secret."""
    signing_input = ".".join(
        _b64(json.dumps(part).encode()) for part in ({"alg": "HS256", **header}, claims)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# --- HS256 (the default configuration) --------------------------------------------------------


def test_the_default_hs256_token_round_trips(settings):
    token = issue_token(tenant_id="acme", sub="alice")

    assert verify_token(token) == Principal(tenant_id="acme", sub="alice")


def test_the_tenant_claim_name_is_configurable(settings):
    settings.JWT_TENANT_CLAIM = "org"
    token = jwt.encode({**_claims(), "org": "initech"}, settings.JWT_SIGNING_KEY, "HS256")

    assert verify_token(token).tenant_id == "initech"


def test_the_issuer_is_checked_when_configured(settings):
    settings.JWT_ISSUER = "https://issuer.example"
    good = jwt.encode(_claims(iss="https://issuer.example"), settings.JWT_SIGNING_KEY, "HS256")
    wrong = jwt.encode(_claims(iss="https://other.example"), settings.JWT_SIGNING_KEY, "HS256")
    missing = jwt.encode(_claims(), settings.JWT_SIGNING_KEY, "HS256")

    assert verify_token(good).sub == "alice"
    for token in (wrong, missing):
        with pytest.raises(InvalidToken):
            verify_token(token)


def _hs(settings, **claims) -> str:
    claims = {name: value for name, value in _claims(**claims).items() if value is not None}
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, "HS256")


# (case, token factory, expected code). The HTTP matrix covers the same ground end to end.
CLAIM_CASES = [
    ("expired past the leeway", lambda s: _hs(s, exp=int(time.time()) - 60), "token_expired"),
    ("exp missing", lambda s: _hs(s, exp=None), "invalid_token"),
    ("exp not a number", lambda s: _hs(s, exp="tomorrow"), "invalid_token"),
    ("nbf past the leeway", lambda s: _hs(s, nbf=int(time.time()) + 60), "invalid_token"),
    ("iat past the leeway", lambda s: _hs(s, iat=int(time.time()) + 60), "invalid_token"),
    (
        "far in the future",
        lambda s: _hs(s, iat=int(time.time()) + 3e7, nbf=int(time.time()) + 3e7),
        "invalid_token",
    ),
    ("another audience", lambda s: _hs(s, aud="another-service"), "invalid_token"),
    ("audience missing", lambda s: _hs(s, aud=None), "invalid_token"),
    ("audiences without ours", lambda s: _hs(s, aud=["a", "b"]), "invalid_token"),
    ("exp a numeric string", lambda s: _hs(s, exp=str(int(time.time()) + 60)), "invalid_token"),
    ("nbf a numeric string", lambda s: _hs(s, nbf=str(int(time.time()))), "invalid_token"),
    ("iat a numeric string", lambda s: _hs(s, iat=str(int(time.time()))), "invalid_token"),
    ("sub missing", lambda s: _hs(s, sub=None), "missing_claims"),
    ("sub an integer", lambda s: _hs(s, sub=42), "missing_claims"),
    ("sub with a NUL", lambda s: _hs(s, sub="x\0y"), "invalid_token"),
    ("sub with a newline", lambda s: _hs(s, sub="alice\nadmin"), "invalid_token"),
    ("tenant with a NUL", lambda s: _hs(s, tenantId="acme\0x"), "invalid_token"),
    ("tenant with a C1 control", lambda s: _hs(s, tenantId="acme\x85"), "invalid_token"),
    ("sub too long", lambda s: _hs(s, sub="a" * 201), "missing_claims"),
    ("tenant missing", lambda s: _hs(s, tenantId=None), "missing_claims"),
    ("tenant an integer", lambda s: _hs(s, tenantId=7), "missing_claims"),
    ("tenant a list", lambda s: _hs(s, tenantId=["acme"]), "missing_claims"),
    ("tenant empty", lambda s: _hs(s, tenantId=""), "missing_claims"),
    ("alg none", lambda s: jwt.encode(_claims(), None, "none"), "invalid_token"),
    (
        "alg HS512 with our key",
        lambda s: jwt.encode(_claims(), s.JWT_SIGNING_KEY * 2, "HS512"),
        "invalid_token",
    ),
    (
        "bad signature",
        lambda s: jwt.encode(_claims(), "another-secret-of-enough-length-0123456789", "HS256"),
        "invalid_token",
    ),
    ("signature stripped", lambda s: _hs(s).rsplit(".", 1)[0] + ".", "invalid_token"),
    ("truncated", lambda s: _hs(s)[:-10], "invalid_token"),
    ("alg none, signature kept", lambda s: _alg_none_keeping_signature(s), "invalid_token"),
    ("garbage", lambda s: "not.a.jwt", "invalid_token"),
    ("not base64", lambda s: "!!!!.@@@@.####", "invalid_token"),
    ("one segment", lambda s: "eyJhbGciOiJIUzI1NiJ9", "invalid_token"),
]


def _alg_none_keeping_signature(settings) -> str:
    """A valid token whose header is swapped for alg=none, the signature left in place."""
    _, payload, signature = _hs(settings).split(".")
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.{signature}"


@pytest.mark.parametrize(
    ("case", "make", "code"), CLAIM_CASES, ids=[case for case, _, _ in CLAIM_CASES]
)
def test_a_bad_token_is_refused(settings, case, make, code):
    with pytest.raises(InvalidToken) as refused:
        verify_token(make(settings))

    assert refused.value.code == code


def test_a_tampered_payload_fails_the_signature(settings):
    header, payload, signature = _hs(settings).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = _b64(json.dumps({**claims, "tenantId": "victim"}).encode())

    with pytest.raises(InvalidToken, match="Signature"):
        verify_token(f"{header}.{tampered}.{signature}")


@pytest.mark.parametrize(
    ("claim", "offset"),
    [("exp", -10), ("nbf", 10), ("iat", 10)],
    ids=["expired 10 s ago", "nbf in 10 s", "iat in 10 s"],
)
def test_clock_skew_within_the_leeway_is_accepted(settings, claim, offset):
    assert settings.JWT_LEEWAY_SECONDS == 30

    assert verify_token(_hs(settings, **{claim: int(time.time()) + offset})).sub == "alice"


def test_the_leeway_is_configurable(settings):
    settings.JWT_LEEWAY_SECONDS = 0

    with pytest.raises(InvalidToken, match="expired"):
        verify_token(_hs(settings, exp=int(time.time()) - 5))


# --- Verified tokens remembered ------------------------------------------------------------------


def test_a_remembered_token_is_refused_once_it_expires(settings):
    settings.JWT_LEEWAY_SECONDS = 0
    token = _hs(settings, exp=int(time.time()) + 1)
    assert verify_token(token).sub == "alice"
    assert token in tokens._verified

    time.sleep(
        max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.05
    )

    with pytest.raises(InvalidToken, match="expired") as refused:
        verify_token(token)
    assert refused.value.code == "token_expired"


def test_a_remembered_token_is_checked_again_under_changed_settings(settings):
    token = _hs(settings)
    assert verify_token(token).sub == "alice"

    settings.JWT_AUDIENCE = "another-service"

    with pytest.raises(InvalidToken, match="Audience"):
        verify_token(token)


def test_a_refused_token_is_not_remembered(settings):
    token = _hs(settings, aud="another-service")
    for _ in range(2):
        with pytest.raises(InvalidToken, match="Audience"):
            verify_token(token)

    assert token not in tokens._verified


def test_a_remembered_token_is_answered_without_verifying_it_again(settings, monkeypatch):
    token = _hs(settings)
    assert verify_token(token).sub == "alice"
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(
        tokens.jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k)
    )

    assert verify_token(token) == Principal(tenant_id="acme", sub="alice")
    assert decodes == []
    # Another token of the same owner is verified in full.
    assert verify_token(_hs(settings, exp=int(time.time()) + 120)).sub == "alice"
    assert decodes == [1]


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c", "crit"])
def test_a_token_naming_its_own_key_is_refused(settings, header):
    value = {"jwk": {"kty": "oct", "k": "c2VjcmV0"}, "x5c": ["MIIB"], "crit": ["exp"]}.get(
        header, "http://127.0.0.1:9/keys"
    )
    token = jwt.encode(_claims(), settings.JWT_SIGNING_KEY, "HS256", headers={header: value})

    with pytest.raises(InvalidToken, match=header):
        verify_token(token)


# --- RS256 with a PEM key ----------------------------------------------------------------------


def test_rs256_with_a_pem_key(settings, rsa_key):
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_VERIFYING_KEY = rsa_key.public_pem

    assert verify_token(rsa_key.sign(_claims())).sub == "alice"
    forged = jwt.encode(_claims(), "forged-with-a-shared-secret-0123456789", "HS256")
    with pytest.raises(InvalidToken):
        verify_token(forged)


def test_hs256_signed_with_the_rsa_public_key_is_refused(settings, rsa_key):
    # The classic confusion: the public key (which anyone may have) used as an HMAC secret.
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_VERIFYING_KEY = rsa_key.public_pem

    for secret in (rsa_key.public_pem, rsa_key.public_pem.strip()):
        with pytest.raises(InvalidToken, match="RS256"):
            verify_token(_hs256_by_hand(_claims(), secret.encode(), typ="JWT"))


@pytest.mark.parametrize("algorithm", ["RS384", "PS256"])
def test_another_algorithm_with_the_right_key_is_refused(settings, rsa_key, algorithm):
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_VERIFYING_KEY = rsa_key.public_pem

    with pytest.raises(InvalidToken, match="RS256"):
        verify_token(rsa_key.sign(_claims(), algorithm=algorithm))


def test_the_issuer_is_matched_with_rs256_too(settings, rsa_key):
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_VERIFYING_KEY = rsa_key.public_pem
    settings.JWT_ISSUER = "https://issuer.example"

    assert verify_token(rsa_key.sign(_claims(iss="https://issuer.example"))).sub == "alice"
    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(iss="https://issuer.example.evil")))


# --- RS256 by JWKS -----------------------------------------------------------------------------


class JWKSServer:
    """A JWKS endpoint on 127.0.0.1 whose keys, delay and liveness a test changes."""

    def __init__(self, keys: list[dict]):
        self.keys = keys
        self.delay = 0.0
        self.trickle = False
        self.stall = False
        self.requests = 0
        self._lock = threading.Lock()
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with jwks._lock:
                    jwks.requests += 1
                time.sleep(jwks.delay)
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if jwks.stall:
                    # Half an answer, then nothing: the read timeout ends it.
                    self.wfile.write(body[:10])
                    self.wfile.flush()
                    time.sleep(3)
                elif jwks.trickle:
                    # A byte at a time, each well within the read timeout: only a total
                    # deadline stops this.
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.05)
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            block_on_close = False  # stop() must not wait for a sleeping handler

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.running = True

    def stop(self):
        if self.running:
            self.running = False
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def jwks(settings, rsa_key):
    """RS256 by JWKS, key-1 published, small time settings; each test gets a fresh cache."""
    server = JWKSServer([rsa_key.jwk("key-1", alg="RS256")])
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_JWKS_URL = server.url
    settings.JWT_JWKS_TIMEOUT_SECONDS = 0.5
    settings.JWT_JWKS_COOLDOWN_SECONDS = 0.5
    settings.JWT_JWKS_MAX_AGE_SECONDS = 60
    tokens._jwks_cache.cache_clear()
    try:
        yield server
    finally:
        server.stop()
        tokens._jwks_cache.cache_clear()


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_rs256_with_keys_from_a_jwks_url(jwks, rsa_key):
    assert verify_token(rsa_key.sign(_claims(), kid="key-1")).sub == "alice"
    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(), kid="key-2"))


def test_keys_are_cached(jwks, rsa_key):
    for _ in range(5):
        verify_token(rsa_key.sign(_claims(), kid="key-1"))

    assert jwks.requests == 1


def test_an_unknown_kid_refetches_once_per_cooldown(jwks, rsa_key, settings):
    verify_token(rsa_key.sign(_claims(), kid="key-1"))
    time.sleep(settings.JWT_JWKS_COOLDOWN_SECONDS + 0.1)

    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(), kid="unknown-1"))
    assert jwks.requests == 2
    # Within the cooldown, more made-up kids ask nothing more.
    for n in range(10):
        with pytest.raises(InvalidToken, match="recently"):
            verify_token(rsa_key.sign(_claims(), kid=f"unknown-{n + 2}"))
    assert jwks.requests == 2

    time.sleep(settings.JWT_JWKS_COOLDOWN_SECONDS + 0.1)
    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(), kid="unknown-99"))
    assert jwks.requests == 3


def test_concurrent_unknown_kids_make_one_fetch(jwks, rsa_key):
    verify_token(rsa_key.sign(_claims(), kid="key-1"))
    time.sleep(0.6)
    jwks.delay = 0.2
    made_up = [rsa_key.sign(_claims(), kid=f"made-up-{n}") for n in range(16)]
    refused = []

    def verify(token):
        try:
            verify_token(token)
        except InvalidToken:
            refused.append(token)

    threads = [threading.Thread(target=verify, args=(token,)) for token in made_up]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(refused) == 16
    assert jwks.requests == 2


def test_a_rotated_key_is_accepted_without_a_restart(jwks, rsa_key, next_rsa_key):
    verify_token(rsa_key.sign(_claims(), kid="key-1"))
    jwks.keys = [rsa_key.jwk("key-1", alg="RS256"), next_rsa_key.jwk("key-2", alg="RS256")]
    time.sleep(0.6)
    # Several requests with the new kid at once: those that find a fetch in flight wait for it
    # and get the key from that one fetch.
    new_tokens = [next_rsa_key.sign(_claims(), kid="key-2") for _ in range(8)]
    subs = []
    threads = [
        threading.Thread(target=lambda t=token: subs.append(verify_token(t).sub))
        for token in new_tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert subs == ["alice"] * 8
    assert verify_token(rsa_key.sign(_claims(), kid="key-1")).sub == "alice"
    assert jwks.requests == 2


def test_a_key_removed_by_the_issuer_stops_verifying_after_the_refresh(
    jwks, rsa_key, next_rsa_key, settings
):
    settings.JWT_JWKS_MAX_AGE_SECONDS = 0.3
    old = rsa_key.sign(_claims(), kid="key-1")
    verify_token(old)
    jwks.keys = [next_rsa_key.jwk("key-2", alg="RS256")]
    time.sleep(0.6)

    # Stale keys still answer this request; the refresh runs in the background.
    assert verify_token(old).sub == "alice"
    _wait_for(lambda: _cache_lacks("key-1"))
    assert jwks.requests == 2
    with pytest.raises(InvalidToken):
        verify_token(old)
    assert verify_token(next_rsa_key.sign(_claims(), kid="key-2")).sub == "alice"


def _cache_lacks(kid: str) -> bool:
    from django.conf import settings

    cache = tokens._jwks_cache(
        settings.JWT_JWKS_URL,
        settings.JWT_ALGORITHM,
        settings.JWT_JWKS_TIMEOUT_SECONDS,
        settings.JWT_JWKS_COOLDOWN_SECONDS,
        settings.JWT_JWKS_MAX_AGE_SECONDS,
    )
    return kid not in cache._keys


def test_cached_keys_keep_verifying_while_the_endpoint_is_down(jwks, rsa_key, settings):
    settings.JWT_JWKS_MAX_AGE_SECONDS = 0.2
    settings.JWT_JWKS_COOLDOWN_SECONDS = 0.2
    token = rsa_key.sign(_claims(), kid="key-1")
    verify_token(token)
    jwks.stop()

    # Well past max_age and several cooldowns: background refreshes fail, the keys stay.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert verify_token(token).sub == "alice"
        assert time.monotonic() - started < 0.1
        time.sleep(0.05)
    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(), kid="key-2"))


def test_a_known_kid_never_waits_for_a_slow_endpoint(jwks, rsa_key, settings):
    settings.JWT_JWKS_MAX_AGE_SECONDS = 0.2
    token = rsa_key.sign(_claims(), kid="key-1")
    verify_token(token)
    jwks.delay = 3
    time.sleep(0.6)

    started = time.monotonic()
    assert verify_token(token).sub == "alice"  # starts the background refresh
    assert verify_token(token).sub == "alice"
    assert time.monotonic() - started < 0.2
    _wait_for(lambda: jwks.requests == 2)


@pytest.mark.parametrize("slowness", ["sleeps", "stalls", "trickles"])
def test_a_fetch_is_bounded_by_the_timeout(jwks, rsa_key, settings, slowness):
    if slowness == "sleeps":
        jwks.delay = 5
    else:
        setattr(jwks, {"stalls": "stall", "trickles": "trickle"}[slowness], True)

    started = time.monotonic()
    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(), kid="key-1"))

    # The timeout (0.5 s), plus one read timeout at most for the trickle, plus slack.
    assert time.monotonic() - started < settings.JWT_JWKS_TIMEOUT_SECONDS * 2 + 0.5


def test_only_keys_that_suit_the_algorithm_are_used(jwks, rsa_key, settings):
    ec_key = KeyPair(ec.generate_private_key(ec.SECP256R1()))
    jwks.keys = [
        rsa_key.jwk("rs384", alg="RS384"),
        rsa_key.jwk("enc", alg="RS256", use="enc"),
        ec_key.jwk("ec"),
        {**rsa_key.jwk("private", alg="RS256"), "d": "AQAB"},
        {"kty": "oct", "k": _b64(b"a-shared-secret-in-a-jwks-0123456"), "kid": "oct"},
        rsa_key.jwk("good"),  # no alg: allowed, bound to the configured RS256
    ]

    assert verify_token(rsa_key.sign(_claims(), kid="good")).sub == "alice"
    for kid in ("rs384", "enc", "ec", "private", "oct"):
        with pytest.raises(InvalidToken, match="No signing key"):
            verify_token(rsa_key.sign(_claims(), kid=kid))


def test_an_hs256_token_keyed_with_the_jwks_key_is_refused(jwks, rsa_key):
    forged = _hs256_by_hand(_claims(), rsa_key.public_pem.encode(), kid="key-1")

    with pytest.raises(InvalidToken, match="RS256"):
        verify_token(forged)
    assert jwks.requests == 0


def test_a_token_without_a_kid_is_refused(jwks, rsa_key):
    with pytest.raises(InvalidToken, match="kid"):
        verify_token(rsa_key.sign(_claims()))


@pytest.mark.parametrize("header", ["jku", "x5u"])
def test_a_token_never_makes_us_fetch_from_a_url_it_names(jwks, attacker_key, header):
    attacker = JWKSServer([attacker_key.jwk("evil", alg="RS256")])
    try:
        token = attacker_key.sign(_claims(), kid="evil", **{header: attacker.url})
        with pytest.raises(InvalidToken):
            verify_token(token)
        assert attacker.requests == 0
        assert jwks.requests == 0
    finally:
        attacker.stop()


def test_a_token_carrying_its_own_key_is_refused(jwks, attacker_key):
    token = attacker_key.sign(_claims(), kid="key-1", jwk=attacker_key.jwk("key-1"))

    with pytest.raises(InvalidToken, match="jwk"):
        verify_token(token)


def test_a_kid_signed_by_another_key_is_refused(jwks, attacker_key):
    with pytest.raises(InvalidToken, match="Signature"):
        verify_token(attacker_key.sign(_claims(), kid="key-1"))


def test_a_failed_fetch_keeps_no_half_set(jwks, rsa_key, settings):
    """An answer that is not a key set (or has no usable key) changes nothing."""
    token = rsa_key.sign(_claims(), kid="key-1")
    verify_token(token)
    jwks.keys = [{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}]
    time.sleep(0.6)

    with pytest.raises(InvalidToken):
        verify_token(rsa_key.sign(_claims(), kid="broken"))
    assert jwks.requests == 2
    assert verify_token(token).sub == "alice"
