"""Authentication (verified JWT) and ownership, on every endpoint."""

import time

import jwt
import pytest
import requests
from django.conf import settings

from jobs.models import Job
from tests.support.api import Owner, submit, wait_for_status


def _token(**overrides) -> str:
    now = int(time.time())
    claims = {
        settings.JWT_TENANT_CLAIM: "acme-auth",
        "sub": "someone",
        "aud": settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    key = overrides.pop("_key", settings.JWT_SIGNING_KEY)
    algorithm = overrides.pop("_alg", settings.JWT_ALGORITHM)
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm)


# (case, Authorization header, expected code)
BAD_CREDENTIALS = [
    ("no header", None, "not_authenticated"),
    ("wrong scheme", "Basic YWxpY2U6c2VjcmV0", "not_authenticated"),
    ("garbage", "Bearer not.a.jwt", "invalid_token"),
    ("two tokens", "Bearer a b", "invalid_header"),
    (
        "bad signature",
        f"Bearer {_token(_key='another-key-of-enough-length-0123456789')}",
        "invalid_token",
    ),
    ("expired", f"Bearer {_token(exp=int(time.time()) - 3600)}", "token_expired"),
    ("no exp", f"Bearer {_token(exp=None)}", "invalid_token"),
    ("wrong audience", f"Bearer {_token(aud='someone-else')}", "invalid_token"),
    ("no audience", f"Bearer {_token(aud=None)}", "invalid_token"),
    ("missing tenant", f"Bearer {_token(**{settings.JWT_TENANT_CLAIM: None})}", "missing_claims"),
    ("missing sub", f"Bearer {_token(sub=None)}", "invalid_token"),
    ("empty tenant", f"Bearer {_token(**{settings.JWT_TENANT_CLAIM: ''})}", "missing_claims"),
    ("unsigned (alg none)", f"Bearer {_token(_alg='none', _key=None)}", "invalid_token"),
]


@pytest.mark.parametrize(
    ("case", "header", "code"), BAD_CREDENTIALS, ids=[case for case, _, _ in BAD_CREDENTIALS]
)
def test_bad_credentials_are_401_on_every_endpoint_and_write_nothing(
    stack, alice, case, header, code
):
    job_id = submit(stack, alice)["id"]
    headers = {"Authorization": header} if header else {}
    jobs_before = Job.objects.count()

    responses = [
        requests.post(f"{stack.api}/api/v1/job", data=b"input", headers=headers, timeout=30),
        requests.get(f"{stack.api}/api/v1/job/{job_id}/status", headers=headers, timeout=30),
        requests.get(f"{stack.api}/api/v1/job/{job_id}/output", headers=headers, timeout=30),
    ]

    for response in responses:
        assert response.status_code == 401, (case, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["code"] == code
    assert Job.objects.count() == jobs_before


@pytest.fixture
def finished_job_of_alice(stack, alice) -> str:
    job_id = submit(stack, alice)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    return job_id


@pytest.mark.parametrize("endpoint", ["status", "output"])
@pytest.mark.parametrize("intruder", ["bob", "mallory"])
def test_another_users_job_is_404_and_asks_no_downstream_service(
    request, stack, finished_job_of_alice, endpoint, intruder
):
    job_id = finished_job_of_alice
    intruder: Owner = request.getfixturevalue(intruder)
    # Back in SUBMITTED, an owner's request would ask JobService; an intruder's must not.
    Job.objects.filter(pk=job_id).update(status="SUBMITTED")
    before = (stack.stats("job")["by_id"].get(job_id), stack.stats("blob")["by_id"].get(job_id))

    response = requests.get(
        f"{stack.api}/api/v1/job/{job_id}/{endpoint}", headers=intruder.headers, timeout=30
    )

    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    after = (stack.stats("job")["by_id"].get(job_id), stack.stats("blob")["by_id"].get(job_id))
    assert after == before
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
