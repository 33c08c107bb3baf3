"""The circuit breaker per downstream service (orchestration/breaker.py), with the reference
JobService failing for real: it opens after CIRCUIT_FAILURE_THRESHOLD transient failures in a row,
lets one probe through per CIRCUIT_PROBE_INTERVAL, and its first success closes it and releases
the jobs that waited."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import Job
from orchestration.breaker import circuit_state, circuit_take_probe
from orchestration.dispatch import jobs_dispatch_due
from orchestration.models import CircuitBreaker
from tests.support.inprocess import run_tasks, run_until_settled, submit
from tests.support.worker import requests_for


def _open_the_jobservice_circuit(api, services, owner) -> list[str]:
    services.faults("job", fail_rate=1.0, status=503, methods=["PUT"])
    job_ids = [submit(api, owner, b"x")["id"] for _ in range(settings.CIRCUIT_FAILURE_THRESHOLD)]
    run_tasks()
    return job_ids


def test_it_opens_after_the_threshold_and_jobs_wait_without_calling(api, services, alice):
    waiting = _open_the_jobservice_circuit(api, services, alice)
    assert circuit_state("jobservice") == "open"
    assert circuit_state("blobservice") == "closed"

    late = submit(api, alice, b"after the outage began")["id"]
    run_tasks()

    # Stored (BlobService is fine), then waiting for JobService without a call to it.
    job = Job.objects.get(pk=late)
    assert job.status == "STORED" and job.attempts == 0 and job.next_attempt_at is not None
    assert requests_for(services, "job", late) == {}
    assert all(Job.objects.get(pk=job_id).status == "STORED" for job_id in waiting)


def test_a_failure_below_the_threshold_does_not_open_it(api, services, alice):
    services.faults("job", fail_next=settings.CIRCUIT_FAILURE_THRESHOLD - 1, status=503)
    for _ in range(settings.CIRCUIT_FAILURE_THRESHOLD - 1):
        submit(api, alice, b"x")
    run_tasks()

    assert circuit_state("jobservice") == "closed"


def test_a_permanent_refusal_is_an_answer_and_does_not_open_it(api, services, alice):
    services.faults("job", fail_rate=1.0, status=400, methods=["PUT"])
    for _ in range(settings.CIRCUIT_FAILURE_THRESHOLD + 1):
        submit(api, alice, b"x")
    run_tasks()

    assert circuit_state("jobservice") == "closed"


def test_one_probe_per_interval(api, services, alice):
    _open_the_jobservice_circuit(api, services, alice)
    opened = CircuitBreaker.objects.get(pk="jobservice")
    interval = timedelta(seconds=settings.CIRCUIT_PROBE_INTERVAL)

    assert not circuit_take_probe("jobservice", now=opened.opened_at)
    assert circuit_take_probe("jobservice", now=opened.opened_at + interval)
    assert not circuit_take_probe("jobservice", now=opened.opened_at + interval)
    assert circuit_state("jobservice") == "half_open"
    # A probe whose outcome never came (its task died): the next one after another interval.
    assert circuit_take_probe("jobservice", now=opened.opened_at + 2 * interval)


def _puts(services) -> int:
    """Submits JobService got, for any job (earlier tests' waiting jobs share the database)."""
    return sum(counts.get("PUT", 0) for counts in services.stats("job")["by_id"].values())


def test_a_failed_probe_opens_it_again(api, services, alice):
    _open_the_jobservice_circuit(api, services, alice)
    before = _puts(services)

    # The dispatcher lets one probe through once the interval has passed (and the jobs past the
    # horizon, whose tasks end them without a call); the probe fails.
    later = timezone.now() + timedelta(seconds=settings.CIRCUIT_PROBE_INTERVAL)
    jobs_dispatch_due(now=later)
    run_tasks()

    assert _puts(services) == before + 1
    assert circuit_state("jobservice") == "open"


def test_the_first_success_closes_it_and_releases_the_waiting_jobs(api, services, alice):
    waiting = _open_the_jobservice_circuit(api, services, alice)
    services.reset()  # JobService is back

    run_until_settled(*waiting)

    assert circuit_state("jobservice") == "closed"
    for job_id in waiting:
        job = Job.objects.get(pk=job_id)
        assert job.status in {"SUBMITTED", "EXECUTION_COMPLETED"}
        assert (job.attempts, job.error, job.retrying_since) == (0, None, None)
        assert requests_for(services, "job", job_id)["PUT"] == 1
