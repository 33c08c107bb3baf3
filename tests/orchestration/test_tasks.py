"""The orchestration task (orchestration/tasks.py): delivered again and again without finishing,
it gives up instead of looping for ever.

A task whose worker dies is delivered again by the broker (tests/e2e/test_crash_recovery.py kills
real workers); each delivery is counted on the job before it does anything (and the count reset
by every delivery that records an outcome), so a job whose task keeps dying is seen here as one
whose earlier deliveries started and never finished.
"""

from django.conf import settings

from jobs import staging
from jobs.models import Job
from orchestration import services as orchestration_services
from tests.support.inprocess import run_tasks, wait_for_status
from tests.support.worker import a_job


def test_a_task_that_keeps_dying_ends_in_an_error_state(services, alice):
    # Three deliveries already started and never finished (ORCHESTRATION_MAX_ATTEMPTS=3).
    assert settings.ORCHESTRATION_MAX_ATTEMPTS == 3
    job = a_job(alice, "CREATED", deliveries=3)
    staging.staged_path(job.id).write_bytes(b"cursed")

    orchestration_services.enqueue_orchestration(job.id)
    assert run_tasks() == [f"orchestrate-{job.id}"]

    job = Job.objects.get(pk=job.pk)
    assert job.status == "STORED_ERROR"
    assert "gave up after 3 orchestration deliveries" in job.error["message"]
    assert job.deliveries == 0 and job.attempts == 0  # the step is over
    assert str(job.id) not in services.stats("blob")["by_id"]


def test_a_task_within_its_budget_carries_the_job_on(api, services, alice):
    # Two deliveries died; the third is still within the budget and does the work.
    job = a_job(alice, "CREATED", deliveries=2)
    staging.staged_path(job.id).write_bytes(b"third time lucky")

    orchestration_services.enqueue_orchestration(job.id)
    run_tasks()

    job = Job.objects.get(pk=job.pk)
    assert job.status == "SUBMITTED" and job.deliveries == 0
    wait_for_status(api, alice, str(job.id), {"EXECUTION_COMPLETED"})
    assert services.stats("job")["executions"] == {str(job.id): 1}
