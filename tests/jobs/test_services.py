"""Concurrent status changes (jobs/services.py job_transition, a compare-and-set) never move a
job backwards, skip a state or repeat history. Threads race against the embedded database."""

import time

from jobs.models import Job
from jobs.services import job_transition
from tests.support.inprocess import Api, run_tasks, submit
from tests.support.jobs_api import in_threads


def test_racing_status_refreshes_leave_one_final_state_and_a_clean_history(api, services, alice):
    # Long enough in JobService for the pollers to race while it is SUBMITTED.
    services.faults("job", execution_delay=0.3)
    job_id = submit(api, alice)["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"

    def poll() -> tuple[list[str], list[bytes]]:
        client, seen, errors = Api(), [], []
        for _ in range(40):
            response = client.status_of(alice, job_id)
            if response.status_code != 200:
                errors.append(response.content)
                break
            seen.append(response.json()["status"])
            if seen[-1] == "EXECUTION_COMPLETED":
                break
            time.sleep(0.02)
        return seen, errors

    results = in_threads(12, poll)

    assert [error for _, errors in results for error in errors] == []
    assert {status for seen, _ in results for status in seen} <= {
        "SUBMITTED",
        "EXECUTION_COMPLETED",
    }
    job = Job.objects.get(pk=job_id)
    assert job.status == "EXECUTION_COMPLETED"
    assert [(entry["from"], entry["to"]) for entry in job.history] == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]


def test_of_many_racing_transitions_exactly_one_wins(alice):
    job = Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="SUBMITTED")
    targets = iter(["EXECUTION_COMPLETED", "EXECUTION_ERROR"] * 4)

    def race() -> bool:
        target = next(targets)  # each thread its own: next() on a list iterator is atomic
        return job_transition(job.id, from_status="SUBMITTED", to_status=target, reason="race")

    results = in_threads(8, race)

    assert results.count(True) == 1
    job.refresh_from_db()
    assert job.status in {"EXECUTION_COMPLETED", "EXECUTION_ERROR"}
    assert len(job.history) == 1 and job.history[0]["to"] == job.status
