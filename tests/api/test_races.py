"""Concurrent status changes never move a job backwards, skip a state or repeat history."""

import threading

from jobs.models import Job
from jobs.services import job_transition
from tests.support.api import status_of, submit, wait_for_stored_status


def test_racing_status_refreshes_leave_one_final_state_and_a_clean_history(stack, alice):
    job_id = submit(stack, alice)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    seen: list[str] = []
    errors: list[str] = []

    def poll():
        for _ in range(40):
            response = status_of(stack, alice, job_id)
            if response.status_code != 200:
                errors.append(response.text)
                return
            seen.append(response.json()["status"])
            if seen[-1] == "EXECUTION_COMPLETED":
                return

    threads = [threading.Thread(target=poll) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert set(seen) <= {"SUBMITTED", "EXECUTION_COMPLETED"}
    job = Job.objects.get(pk=job_id)
    assert job.status == "EXECUTION_COMPLETED"
    assert [(entry["from"], entry["to"]) for entry in job.history] == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]


def test_of_many_racing_transitions_exactly_one_wins(stack, alice):
    job = Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="SUBMITTED")
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def race(target: str):
        barrier.wait()
        results.append(
            job_transition(job.id, from_status="SUBMITTED", to_status=target, reason="race")
        )

    targets = ["EXECUTION_COMPLETED", "EXECUTION_ERROR"] * 4
    threads = [threading.Thread(target=race, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 1
    job.refresh_from_db()
    assert job.status in {"EXECUTION_COMPLETED", "EXECUTION_ERROR"}
    assert len(job.history) == 1 and job.history[0]["to"] == job.status
