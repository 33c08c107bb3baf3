"""GET /api/v1/job/{id}/status: final states locally, SUBMITTED refreshed from JobService."""

import pytest
from django.conf import settings

from jobs.models import Job
from tests.support.inprocess import run_tasks, submit, wait_for_status


def _job_gets(services, job_id) -> int:
    return services.stats("job")["by_id"].get(job_id, {}).get("GET", 0)


def test_a_final_job_is_answered_without_asking_jobservice(api, services, alice):
    job_id = submit(api, alice)["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    gets_before = _job_gets(services, job_id)

    for _ in range(3):
        response = api.status_of(alice, job_id)
        assert response.status_code == 200
        assert response.json()["status"] == "EXECUTION_COMPLETED"

    assert _job_gets(services, job_id) == gets_before


def test_a_submitted_job_is_refreshed_and_the_new_state_stored(api, services, alice):
    job_id = submit(api, alice)["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"

    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})

    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
    assert _job_gets(services, job_id) >= 1


def test_it_answers_the_last_known_status_while_jobservice_is_down(
    api, services, alice, monkeypatch
):
    services.faults("job", execution_delay=30)
    job_id = submit(api, alice)["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    # JobService stops answering: nothing listens on its address any more.
    monkeypatch.setattr(settings, "JOBSERVICE_URL", f"http://127.0.0.1:{_closed_port()}")
    try:
        response = api.status_of(alice, job_id)
    finally:
        monkeypatch.undo()
        services.cancel_remote(job_id)

    assert response.status_code == 200
    assert response.json()["status"] == "SUBMITTED"
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"


@pytest.mark.parametrize("job_id", ["2b1d1c8e-5d0a-4c4e-9d7e-2f7f3b0b1a11", "not-a-uuid", "0"])
def test_an_unknown_or_malformed_id_is_404_job_not_found(api, alice, job_id):
    response = api.status_of(alice, job_id)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "job_not_found"


def _closed_port() -> int:
    from tests.support.processes import free_port

    return free_port()  # free a moment ago: nothing listens there
