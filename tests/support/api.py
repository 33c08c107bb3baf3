"""What tests do as users of the API: owners with tokens, submitting, polling."""

import time
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Owner:
    tenant_id: str
    sub: str

    @property
    def token(self) -> str:
        from jobs.api.tokens import issue_token

        return issue_token(tenant_id=self.tenant_id, sub=self.sub)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def submit(stack, owner: Owner, data: bytes = b"hello world", **headers) -> dict:
    response = requests.post(
        f"{stack.api}/api/v1/job", data=data, headers={**owner.headers, **headers}, timeout=30
    )
    assert response.status_code == 202, response.text
    return response.json()


def status_of(stack, owner: Owner, job_id: str) -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/job/{job_id}/status", headers=owner.headers, timeout=30
    )


def wait_for_status(
    stack, owner: Owner, job_id: str, wanted: set[str], timeout: float = 30
) -> dict:
    """Poll the status endpoint (as a user would) until the job reaches one of `wanted`."""
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        response = status_of(stack, owner, job_id)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(
        f"job {job_id} still {body.get('status')} after {timeout}s, wanted {sorted(wanted)}"
    )


def wait_for_stored_status(job_id: str, wanted: set[str], timeout: float = 30):
    """Wait on the database alone (no API call, so no refresh from JobService)."""
    from jobs.models import Job

    deadline = time.monotonic() + timeout
    job = Job.objects.get(pk=job_id)
    while job.status not in wanted and time.monotonic() < deadline:
        time.sleep(0.05)
        job.refresh_from_db()
    assert job.status in wanted, f"job {job_id} is {job.status}, wanted {sorted(wanted)}"
    return job
