"""Object-level authorization on every job-scoped endpoint, for every form of id, in-process.

Another owner's job, an unknown id and a malformed id must be indistinguishable: 404 with the
same bytes and the same headers, the same work done to find that out, and no downstream call.
The endpoints are read from jobs/api/urls.py, so a new job-scoped route is covered when it is
added.
"""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.api import urls as job_urls
from jobs.models import Job
from tests.support.api import Owner
from tests.support.inprocess import submit, wait_for_status

# (name, HTTP method) of every route that takes a job id.
ENDPOINTS = [
    (pattern.name, method)
    for pattern in job_urls.urlpatterns
    if "job_id" in str(pattern.pattern)
    for method in pattern.callback.actions
]
PLACEHOLDER = "JOB-ID-PLACEHOLDER"


def _path(name: str, job_id: str) -> str:
    # The id is put in as given (not quoted by reverse()), so malformed forms arrive as such.
    return reverse(name, kwargs={"job_id": PLACEHOLDER}).replace(PLACEHOLDER, job_id)


def _call(api, owner: Owner, name: str, method: str, job_id: str):
    return api.request(method, _path(name, job_id), owner)


def _downstream(services) -> tuple[dict, dict]:
    return services.stats("job"), services.stats("blob")


@pytest.fixture
def job_of_alice(api, alice) -> str:
    """A finished job put back in SUBMITTED: its owner's request would now ask JobService."""
    job_id = submit(api, alice)["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
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
    api, services, alice, bob, mallory, job_of_alice, name, method
):
    # The owner's own job, in any spelling, is hers: the endpoint and the id are real.
    for own_form in (job_of_alice, job_of_alice.upper()):
        assert _call(api, alice, name, method, own_form).status_code != 404
    Job.objects.filter(pk=job_of_alice).update(status="SUBMITTED")
    before = _downstream(services)

    answers = {
        form: _call(api, who, name, method, job_id)
        for form, (who, job_id) in _forms(job_of_alice, alice, bob, mallory).items()
    }

    reference = answers["another user's job (same tenant)"]
    assert reference.status_code == 404
    assert reference.json()["code"] == "job_not_found"
    assert reference["Content-Type"] == "application/problem+json"
    for form, response in answers.items():
        assert response.status_code == 404, (form, response.content)
        assert response.content == reference.content, form
        assert _header_names(response) == _header_names(reference), form
    assert _downstream(services) == before
    assert Job.objects.get(pk=job_of_alice).status == "SUBMITTED"


def _header_names(response) -> set[str]:
    return {name.lower() for name in response.headers} - {"date"}


@pytest.mark.parametrize(("name", "method"), ENDPOINTS)
def test_another_owners_job_does_the_same_work_as_an_unknown_one(
    api, services, bob, job_of_alice, name, method
):
    """No work that only an existing job would cause: the database is asked the same questions,
    in the same order, whether the job exists (as another owner's) or not, and nothing else is
    asked downstream. (What an answer's time could give away follows from the work done, so the
    work is compared, not clock readings.)"""
    unknown = str(uuid.uuid4())
    before = _downstream(services)
    work = {}
    for label, job_id in (("theirs", job_of_alice), ("unknown", unknown)):
        with CaptureQueriesContext(connection) as queries:
            response = _call(api, bob, name, method, job_id)
        assert response.status_code == 404
        work[label] = [_without(job_id, query["sql"]) for query in queries]

    assert work["theirs"], "the lookup is not captured: the comparison would prove nothing"
    assert work["theirs"] == work["unknown"]
    assert _downstream(services) == before


def _without(job_id: str, query: str) -> str:
    """The query with the id it looks for (in either spelling) left out."""
    return query.replace(job_id, PLACEHOLDER).replace(uuid.UUID(job_id).hex, PLACEHOLDER)


@pytest.mark.parametrize("endpoint", ["status", "output"])
@pytest.mark.parametrize("intruder", ["bob", "mallory"])
def test_another_users_job_is_404_and_asks_no_downstream_service(
    request, api, services, alice, endpoint, intruder
):
    job_id = submit(api, alice)["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    intruder: Owner = request.getfixturevalue(intruder)
    # Back in SUBMITTED, an owner's request would ask JobService; an intruder's must not.
    Job.objects.filter(pk=job_id).update(status="SUBMITTED")
    before = (
        services.stats("job")["by_id"].get(job_id),
        services.stats("blob")["by_id"].get(job_id),
    )

    response = api.get(f"/api/v1/job/{job_id}/{endpoint}", intruder)

    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    after = (
        services.stats("job")["by_id"].get(job_id),
        services.stats("blob")["by_id"].get(job_id),
    )
    assert after == before
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    Job.objects.filter(pk=job_id).update(status="EXECUTION_COMPLETED")


def test_an_idempotency_key_never_answers_with_another_owners_job(api, alice, bob):
    key = f"shared-{uuid.uuid4()}"
    first = submit(api, alice, b"same bytes", headers={"Idempotency-Key": key})

    second = submit(api, bob, b"same bytes", headers={"Idempotency-Key": key})

    assert second["id"] != first["id"]
    assert Job.objects.get(pk=second["id"]).sub == bob.sub
