"""Token verification by configuration: HS256 (default), RS256 with a PEM key, RS256 by JWKS."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command

from jobs.tokens import InvalidToken, Principal, issue_token, verify_token


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, private_pem, public_pem


def _claims(**extra):
    now = int(time.time())
    return {"tenantId": "acme", "sub": "alice", "aud": "frontservice", "exp": now + 60, **extra}


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


def test_rs256_with_a_pem_key(settings, rsa_key):
    _, private_pem, public_pem = rsa_key
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_VERIFYING_KEY = public_pem

    assert verify_token(jwt.encode(_claims(), private_pem, "RS256")).sub == "alice"
    # The classic confusion attack: HS256 "signed" with the public key. Refused.
    forged = jwt.encode(_claims(), "forged-with-a-shared-secret-0123456789", "HS256")
    with pytest.raises(InvalidToken):
        verify_token(forged)


@pytest.fixture
def jwks_server(rsa_key):
    key, _, _ = rsa_key
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_rs256_with_keys_from_a_jwks_url(settings, rsa_key, jwks_server):
    _, private_pem, _ = rsa_key
    settings.JWT_ALGORITHM = "RS256"
    settings.JWT_JWKS_URL = jwks_server

    token = jwt.encode(_claims(), private_pem, "RS256", headers={"kid": "key-1"})
    assert verify_token(token).sub == "alice"
    unknown_kid = jwt.encode(_claims(), private_pem, "RS256", headers={"kid": "key-2"})
    with pytest.raises(InvalidToken):
        verify_token(unknown_kid)


def test_issue_token_prints_a_token_that_verifies(capsys):
    call_command("issue_token", "--tenant", "acme", "--sub", "alice", "--lifetime", "120")

    token = capsys.readouterr().out.strip()
    assert verify_token(token) == Principal(tenant_id="acme", sub="alice")
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= time.time() + 121


def test_issue_token_honours_the_audience_option(capsys):
    call_command("issue_token", "--tenant", "acme", "--sub", "alice", "--audience", "other")

    with pytest.raises(InvalidToken):
        verify_token(capsys.readouterr().out.strip())


def test_issue_token_needs_a_private_key_for_rs256(settings):
    settings.JWT_ALGORITHM = "RS256"

    with pytest.raises(CommandError, match="private-key-file"):
        call_command("issue_token", "--tenant", "acme", "--sub", "alice")
