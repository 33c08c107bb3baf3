"""The dispatcher (orchestration/dispatch.py): due jobs are enqueued, each once however many
dispatchers run; jobs not yet due, or waiting on an open circuit, stay as they are; jobs past the
retry horizon are let through so their task ends them in the error state."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from frontservice.broker import JOBS, WEBHOOKS, process_broker
from jobs.models import Job, WebhookStatus
from orchestration.dispatch import dispatch_pass, jobs_dispatch_due
from orchestration.models import CircuitBreaker
from tests.support.inprocess import clear_tasks, run_tasks
from tests.support.worker import a_job, requests_for

WEBHOOKS_DISPATCHER = "webhooks.dispatch.webhooks_dispatch_due"


def _waiting(owner, *, due_in: float, status: str = "STORED", **fields) -> Job:
    now = timezone.now()
    job = a_job(
        owner,
        status,
        blob_id="b",
        next_attempt_at=now + timedelta(seconds=due_in),
        retrying_since=now,
        attempts=1,
        **fields,
    )
    return Job.objects.get(pk=job.pk)  # as stored (MongoDB keeps milliseconds)


def test_a_due_job_is_enqueued_once_by_two_dispatchers(services, alice):
    job = _waiting(alice, due_in=-1)

    first = jobs_dispatch_due()
    second = jobs_dispatch_due()

    assert str(job.id) in first and str(job.id) not in second
    job.refresh_from_db()
    assert job.next_attempt_at is None and job.status == "STORED"
    # On the jobs' queue, which no webhook delivery shares.
    assert [process_broker(queue).queue_size() for queue in (JOBS, WEBHOOKS)] == [1, 0]
    assert run_tasks().count(f"orchestrate-{job.id}") == 1


def test_a_due_webhook_is_enqueued_once_on_the_webhooks_queue(services, alice):
    job = a_job(
        alice,
        "EXECUTION_COMPLETED",
        callback_url="http://127.0.0.1:9/hooks",
        webhook_status=WebhookStatus.PENDING,
        webhook_delivery_id=uuid.uuid4(),
        webhook_next_attempt_at=timezone.now() - timedelta(seconds=1),
    )

    queued = process_broker(WEBHOOKS).queue_size()

    first = dispatch_pass()[WEBHOOKS_DISPATCHER]
    second = dispatch_pass()[WEBHOOKS_DISPATCHER]

    assert str(job.id) in first and str(job.id) not in second
    assert Job.objects.get(pk=job.pk).webhook_next_attempt_at is None
    assert process_broker(WEBHOOKS).queue_size() == queued + len(first + second)
    clear_tasks()
    Job.objects.filter(pk=job.pk).delete()  # made up: its delivery is not this test's concern


def test_a_job_not_yet_due_stays_waiting(services, alice):
    job = _waiting(alice, due_in=60)

    assert str(job.id) not in jobs_dispatch_due()
    assert Job.objects.get(pk=job.pk).next_attempt_at == job.next_attempt_at
    assert process_broker().queue_size() == 0


def test_an_open_circuit_keeps_due_jobs_waiting_but_one_probe(services, alice):
    now = timezone.now()
    CircuitBreaker.objects.create(
        service="jobservice", state="open", failures=9, opened_at=now, probe_at=now + timedelta(1)
    )
    jobs = [_waiting(alice, due_in=-1) for _ in range(3)]

    assert not {str(job.id) for job in jobs} & set(jobs_dispatch_due())
    for job in jobs:
        assert Job.objects.get(pk=job.pk).next_attempt_at == job.next_attempt_at

    CircuitBreaker.objects.filter(pk="jobservice").update(probe_at=now)
    dispatched = {str(job.id) for job in jobs} & set(jobs_dispatch_due())
    assert len(dispatched) <= 1  # the probe may be an earlier test's job, which is as good
    assert not {str(job.id) for job in jobs} & set(jobs_dispatch_due())  # lease taken


def test_past_the_horizon_a_job_ends_in_its_error_state_though_the_circuit_is_open(services, alice):
    now = timezone.now()
    CircuitBreaker.objects.create(
        service="jobservice", state="open", failures=9, opened_at=now, probe_at=now + timedelta(1)
    )
    error = {"service": "jobservice", "message": "HTTP 503", "status_code": 503, "attempts": 4}
    job = _waiting(alice, due_in=-1, error=error)
    horizon = timedelta(seconds=settings.DOWNSTREAM_RETRY_HORIZON)
    Job.objects.filter(pk=job.pk).update(retrying_since=now - horizon, attempts=4)

    assert str(job.id) in jobs_dispatch_due()
    run_tasks()

    job.refresh_from_db()
    assert job.status == "SUBMITTED_ERROR"
    assert job.error["status_code"] == 503 and job.error["attempts"] == job.attempts == 4
    assert job.next_attempt_at is None
    assert requests_for(services, "job", job.id) == {}
