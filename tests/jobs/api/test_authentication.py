"""jobs/api/authentication.py: bearer JWTs on every endpoint of the job API, in-process.

Missing, malformed, forged, damaged and misplaced credentials are each sent to every route of
jobs/api/urls.py (a POST with an Idempotency-Key, so a key record would be a write too): 401, a
problem document, a Bearer challenge, and nothing written. The verification rules themselves,
also under the RS256 and JWKS configurations, are plain function tests in test_tokens.py.
"""

import base64
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.urls import reverse

from jobs.api import urls as job_urls
from jobs.models import IdempotencyKey, Job
from tests.support.api import Owner
from tests.support.inprocess import submit

OTHER_SECRET = "another-secret-of-enough-length-0123456789"

# (name, HTTP method) of every route of the job API.
ENDPOINTS = [
    (pattern.name, method)
    for pattern in job_urls.urlpatterns
    for method in pattern.callback.actions
]


def _token(*, key: str | None = None, algorithm: str = "HS256", headers=None, **overrides) -> str:
    now = int(time.time())
    claims = {
        settings.JWT_TENANT_CLAIM: "forger",
        "sub": "mallory",
        "aud": settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key or settings.JWT_SIGNING_KEY, algorithm, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tampered() -> str:
    """A valid token whose payload names another tenant, with the original signature."""
    header, payload, signature = _token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims[settings.JWT_TENANT_CLAIM] = "victim-tenant"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _now() -> int:
    return int(time.time())


def _claims_only() -> dict:
    return jwt.decode(_token(), options={"verify_signature": False})


def _alg_none_keeping_signature() -> str:
    """A valid token whose header is swapped for alg=none, the signature left in place."""
    _, payload, signature = _token().split(".")
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.{signature}"


# (case, Authorization header factory or None for no header, expected code). Factories, so
# times are taken when the test runs, not at collection.
BAD_CREDENTIALS = [
    ("no header", None, "not_authenticated"),
    ("wrong scheme", lambda: "Basic YWxpY2U6c2VjcmV0", "not_authenticated"),
    ("two tokens", lambda: "Bearer a b", "invalid_header"),
    ("empty bearer", lambda: "Bearer", "invalid_header"),
    ("garbage", lambda: "Bearer not.a.jwt", "invalid_token"),
    ("not base64", lambda: "Bearer !!!!.@@@@.####", "invalid_token"),
    ("not ascii", lambda: "Bearer t\u00f6ken", "invalid_token"),
    (
        "empty tenant",
        lambda: f"Bearer {_token(**{settings.JWT_TENANT_CLAIM: ''})}",
        "missing_claims",
    ),
]
FORGED = [
    ("alg none", lambda: f"Bearer {jwt.encode(_claims_only(), None, 'none')}", "invalid_token"),
    (
        "alg none, signature kept",
        lambda: f"Bearer {_alg_none_keeping_signature()}",
        "invalid_token",
    ),
    (
        "alg HS512 with our secret",
        lambda: f"Bearer {_token(key=settings.JWT_SIGNING_KEY * 2, algorithm='HS512')}",
        "invalid_token",
    ),
    ("expired", lambda: f"Bearer {_token(exp=_now() - 3600)}", "token_expired"),
    ("expired past the leeway", lambda: f"Bearer {_token(exp=_now() - 45)}", "token_expired"),
    ("exp missing", lambda: f"Bearer {_token(exp=None)}", "invalid_token"),
    ("exp not a number", lambda: f"Bearer {_token(exp='never')}", "invalid_token"),
    ("nbf in the future", lambda: f"Bearer {_token(nbf=_now() + 120)}", "invalid_token"),
    ("iat in the future", lambda: f"Bearer {_token(iat=_now() + 120)}", "invalid_token"),
    (
        "far in the future",
        lambda: f"Bearer {_token(iat=_now() + 10**8, nbf=_now() + 10**8, exp=_now() + 2 * 10**8)}",
        "invalid_token",
    ),
    ("another audience", lambda: f"Bearer {_token(aud='billing-service')}", "invalid_token"),
    ("audience missing", lambda: f"Bearer {_token(aud=None)}", "invalid_token"),
    ("sub missing", lambda: f"Bearer {_token(sub=None)}", "missing_claims"),
    ("sub an integer", lambda: f"Bearer {_token(sub=1234)}", "missing_claims"),
    ("sub with a NUL", lambda: f"Bearer {_token(sub='x\0y')}", "invalid_token"),
    ("sub too long", lambda: f"Bearer {_token(sub='m' * 201)}", "missing_claims"),
    (
        "tenant missing",
        lambda: f"Bearer {_token(**{settings.JWT_TENANT_CLAIM: None})}",
        "missing_claims",
    ),
    (
        "tenant an integer",
        lambda: f"Bearer {_token(**{settings.JWT_TENANT_CLAIM: 42})}",
        "missing_claims",
    ),
    ("tampered payload", lambda: f"Bearer {_tampered()}", "invalid_token"),
    ("bad signature", lambda: f"Bearer {_token(key=OTHER_SECRET)}", "invalid_token"),
    ("signature stripped", lambda: f"Bearer {_token().rsplit('.', 1)[0]}.", "invalid_token"),
    ("truncated", lambda: f"Bearer {_token()[:-12]}", "invalid_token"),
    (
        "jku naming a key server",
        lambda: f"Bearer {_token(headers={'jku': 'http://127.0.0.1:9/jwks.json'})}",
        "invalid_token",
    ),
    (
        "embedded jwk",
        lambda: f"Bearer {_token(headers={'jwk': {'kty': 'oct', 'k': _b64(b'x' * 32)}})}",
        "invalid_token",
    ),
    ("crit header", lambda: f"Bearer {_token(headers={'crit': ['exp']})}", "invalid_token"),
]


@pytest.fixture
def job_id(api) -> str:
    """An existing job (of an owner none of the requests names), left CREATED."""
    owner = Owner(tenant_id=f"forged-{uuid.uuid4().hex[:8]}", sub="owner")
    return submit(api, owner)["id"]


def _staged_files() -> set[Path]:
    return {path for path in Path(settings.STAGING_DIR).rglob("*") if path.is_file()}


def _path(name: str, job_id: str) -> str:
    return reverse(name, kwargs={"job_id": job_id}) if name != "job-list" else reverse(name)


def _send_everywhere(api, job_id: str, headers: dict, query: str = "") -> list:
    """The same credentials on every route and method of the job API; the responses."""
    responses = []
    for name, method in ENDPOINTS:
        path = _path(name, job_id) + query
        if (name, method) == ("job-list", "post"):
            post_headers = {**headers, "Idempotency-Key": f"forged-{uuid.uuid4()}"}
            response = api.post(
                path, data=b"input", content_type="application/octet-stream", headers=post_headers
            )
        else:
            response = api.request(method, path, headers=headers)
        response.sent_to = f"{method.upper()} {path}"
        responses.append(response)
    return responses


def _assert_refused(responses, code: str, case: str) -> None:
    for response in responses:
        assert response.status_code == 401, (case, response.sent_to, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")
        body = response.json()
        assert (body["status"], body["code"]) == (401, code), (case, response.sent_to, body)


def _written() -> tuple:
    return Job.objects.count(), IdempotencyKey.objects.count(), _staged_files()


def _assert_nothing_written(before: tuple, job_id: str) -> None:
    jobs, keys, staged = before
    assert Job.objects.count() == jobs
    assert IdempotencyKey.objects.count() == keys
    assert not _staged_files() - staged
    assert Job.objects.get(pk=job_id).status == "CREATED"  # the cancel did nothing either


@pytest.mark.parametrize(
    ("case", "header", "code"), BAD_CREDENTIALS, ids=[case for case, _, _ in BAD_CREDENTIALS]
)
def test_bad_credentials_are_401_on_every_endpoint_and_write_nothing(
    api, job_id, case, header, code
):
    before = _written()
    headers = {"Authorization": header()} if header else {}

    responses = _send_everywhere(api, job_id, headers)

    _assert_refused(responses, code, case)
    # RFC 6750: an error attribute exactly when bearer credentials were sent.
    sent_bearer = header is not None and header().lower().startswith("bearer")
    for response in responses:
        assert ('error="invalid' in response["WWW-Authenticate"]) == sent_bearer, case
    _assert_nothing_written(before, job_id)


@pytest.mark.parametrize(("case", "header", "code"), FORGED, ids=[case for case, _, _ in FORGED])
def test_a_forged_token_is_401_and_writes_nothing(api, job_id, case, header, code):
    before = _written()

    responses = _send_everywhere(api, job_id, {"Authorization": header()})

    _assert_refused(responses, code, case)
    # RFC 6750: credentials were sent, so the challenge says they were bad.
    assert all('error="invalid' in r["WWW-Authenticate"] for r in responses)
    _assert_nothing_written(before, job_id)


def test_a_token_in_the_query_string_is_not_looked_at(api, job_id):
    before = _written()
    token = Owner(tenant_id="query", sub="string").token

    responses = _send_everywhere(api, job_id, {}, query=f"?access_token={token}")

    _assert_refused(responses, "not_authenticated", "token in the query string")
    # No credentials were sent, so no error attribute (RFC 6750 §3.1).
    assert all("error=" not in r["WWW-Authenticate"] for r in responses)
    _assert_nothing_written(before, job_id)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_scheme_is_case_insensitive(api, alice, scheme):
    response = api.submit(alice, b"input", headers={"Authorization": f"{scheme} {alice.token}"})

    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "claims",
    [{"exp": -10}, {"iat": 10}, {"nbf": 10}],
    ids=["expired 10 s ago", "iat in 10 s", "nbf in 10 s"],
)
def test_clock_skew_within_the_leeway_is_accepted(api, alice, claims):
    assert settings.JWT_LEEWAY_SECONDS == 30
    token = _token(
        **{settings.JWT_TENANT_CLAIM: alice.tenant_id, "sub": alice.sub},
        **{name: _now() + offset for name, offset in claims.items()},
    )

    response = api.submit(alice, b"input", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=response.json()["id"]).sub == alice.sub
