"""The worker tier's receiver (orchestration/receivers.py): a job the domain announces as
created gets its orchestration task on the broker, and nothing runs until a worker takes it."""

from frontservice.broker import JOBS, WEBHOOKS, process_broker
from jobs.models import Job
from tests.support.inprocess import run_tasks, submit, wait_for_status


def test_a_created_job_gets_its_orchestration_task(api, services, alice):
    job_id = submit(api, alice, b"announced")["id"]

    # Queued by the job_created signal's receiver, not run: the job waits in CREATED. On the
    # jobs' queue, which no webhook delivery shares.
    assert process_broker(JOBS).queue_size() == 1
    assert process_broker(WEBHOOKS).queue_size() == 0
    assert Job.objects.get(pk=job_id).status == "CREATED"
    assert run_tasks() == [f"orchestrate-{job_id}"]
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})


def test_a_status_change_enqueues_no_orchestration(api, services, alice):
    job_id = submit(api, alice, b"announced once")["id"]
    run_tasks()

    # Its steps (CREATED -> STORED -> SUBMITTED) announced changes, none a new job.
    assert process_broker().queue_size() == 0
    assert run_tasks() == []
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
