"""Object-level authorization on every job-scoped endpoint, for every form of id.

Another owner's job, an unknown id and a malformed id must be indistinguishable: 404 with the
same bytes and the same headers, about the same time, and no downstream call. The endpoints are
read from jobs/urls.py, so a new job-scoped route is covered when it is added.
"""

import statistics
import time
import uuid

import pytest
import requests
from django.urls import reverse

from jobs.api import urls as job_urls
from jobs.models import Job
from tests.support.api import Owner, submit, wait_for_status

# (name, HTTP method) of every route that takes a job id.
ENDPOINTS = [
    (pattern.name, method)
    for pattern in job_urls.urlpatterns
    if "job_id" in str(pattern.pattern)
    for method in pattern.callback.actions
]
PLACEHOLDER = "JOB-ID-PLACEHOLDER"


def _url(stack, name: str, job_id: str) -> str:
    # The id is put in as given (not quoted by reverse()), so malformed forms arrive as such.
    return stack.api + reverse(name, kwargs={"job_id": PLACEHOLDER}).replace(PLACEHOLDER, job_id)


def _call(stack, owner: Owner, name: str, method: str, job_id: str) -> requests.Response:
    return requests.request(
        method.upper(), _url(stack, name, job_id), headers=owner.headers, timeout=30
    )


def _downstream(stack) -> tuple[dict, dict]:
    return stack.stats("job"), stack.stats("blob")


@pytest.fixture
def job_of_alice(quiet_stack, alice) -> str:
    """A finished job put back in SUBMITTED: its owner's request would now ask JobService."""
    job_id = submit(quiet_stack, alice)["id"]
    wait_for_status(quiet_stack, alice, job_id, {"EXECUTION_COMPLETED"})
    Job.objects.filter(pk=job_id).update(status="SUBMITTED")
    yield job_id
    Job.objects.filter(pk=job_id).update(status="EXECUTION_COMPLETED")


def _forms(job_id: str, alice: Owner, bob: Owner, mallory: Owner) -> dict:
    """(who asks, which id) for every way of not owning the job."""
    return {
        "another user's job (same tenant)": (bob, job_id),
        "another tenant's job (same sub)": (mallory, job_id),
        "another user's job, uppercase": (bob, job_id.upper()),
        "another user's job, no hyphens": (bob, job_id.replace("-", "")),
        "another user's job, urn form": (bob, f"urn:uuid:{job_id}"),
        "unknown valid uuid": (alice, str(uuid.uuid4())),
        "malformed": (alice, "not-a-uuid"),
        "path traversal": (alice, "..%2F.."),
        "encoded slash": (alice, f"{job_id}%2Fstatus"),
        "1000 characters": (alice, "a" * 1000),
        "nul byte": (alice, "%00"),
    }


@pytest.mark.parametrize(("name", "method"), ENDPOINTS)
def test_every_id_form_of_a_job_not_yours_is_the_same_404(
    quiet_stack, alice, bob, mallory, job_of_alice, name, method
):
    stack = quiet_stack
    # The owner's own job, in any spelling, is hers: the endpoint and the id are real.
    for own_form in (job_of_alice, job_of_alice.upper()):
        assert _call(stack, alice, name, method, own_form).status_code != 404
    Job.objects.filter(pk=job_of_alice).update(status="SUBMITTED")
    before = _downstream(stack)

    answers = {
        form: _call(stack, who, name, method, job_id)
        for form, (who, job_id) in _forms(job_of_alice, alice, bob, mallory).items()
    }

    reference = answers["another user's job (same tenant)"]
    assert reference.status_code == 404
    assert reference.json()["code"] == "job_not_found"
    assert reference.headers["Content-Type"] == "application/problem+json"
    for form, response in answers.items():
        assert response.status_code == 404, (form, response.text)
        assert response.content == reference.content, form
        assert _header_names(response) == _header_names(reference), form
    assert _downstream(stack) == before
    assert Job.objects.get(pk=job_of_alice).status == "SUBMITTED"


def _header_names(response: requests.Response) -> set[str]:
    return {name.lower() for name in response.headers} - {"date"}


@pytest.mark.parametrize(("name", "method"), ENDPOINTS)
def test_another_owners_job_takes_as_long_as_an_unknown_one(
    quiet_stack, alice, bob, job_of_alice, name, method
):
    """A behaviour check, not a benchmark: no work that only an existing job would cause."""
    stack = quiet_stack
    unknown = str(uuid.uuid4())
    timings: dict[str, list[float]] = {"theirs": [], "unknown": []}
    for _ in range(20):
        # Interleaved, so a slow moment of the machine hits both the same.
        for label, job_id in (("theirs", job_of_alice), ("unknown", unknown)):
            started = time.perf_counter()
            response = _call(stack, bob, name, method, job_id)
            timings[label].append(time.perf_counter() - started)
            assert response.status_code == 404

    difference = statistics.median(timings["theirs"]) - statistics.median(timings["unknown"])
    assert abs(difference) < 0.05, timings


def test_an_idempotency_key_never_answers_with_another_owners_job(stack, alice, bob):
    key = f"shared-{uuid.uuid4()}"
    first = submit(stack, alice, b"same bytes", **{"Idempotency-Key": key})

    second = submit(stack, bob, b"same bytes", **{"Idempotency-Key": key})

    assert second["id"] != first["id"]
    assert Job.objects.get(pk=second["id"]).sub == bob.sub
