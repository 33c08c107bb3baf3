"""The reconciler (orchestration/reconcile.py): its passes over stuck, unpolled and cancelling
jobs, their claims and time budget, and the staging hygiene it runs.

In-process: the passes run here, the tasks they enqueue are run by run_tasks(), the reference
services are real processes. Every test shares one database, so a pass that must find exactly
this test's jobs runs in an era of its own: the jobs are dated `ERA` ago, and the pass is told
it is `ERA` ago plus a little (`reconcile(now=...)`); no other test's job is that old.
"""

import os
import threading
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from jobs import staging
from jobs.models import Job
from orchestration.reconcile import reconcile, staging_cleanup
from tests.support.inprocess import run_tasks, submit, wait_for_status
from tests.support.worker import Background, wait_until

ERA = timedelta(days=20 * 365)
STUCK_AFTER = timedelta(minutes=5)


def _stuck_job(owner, content: bytes, *, status="CREATED", age=ERA, **fields) -> Job:
    """A job whose task was lost (never enqueued), with its input staged."""
    job = Job.objects.create(tenant_id=owner.tenant_id, sub=owner.sub, status=status, **fields)
    staging.staged_path(job.id).write_bytes(content)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - age)
    return job


def _in_the_era():
    """A pass's `now` that finds the jobs dated ERA ago stuck, and no younger one."""
    return timezone.now() - ERA + STUCK_AFTER + timedelta(minutes=1)


# --- stuck jobs: enqueued again, once --------------------------------------------------------


def test_the_reconciler_enqueues_stuck_jobs_once_even_when_two_run_at_once(api, services, alice):
    jobs = [_stuck_job(alice, f"stuck {n}".encode()) for n in range(4)]
    now = _in_the_era()
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        return reconcile(stuck_after=STUCK_AFTER, now=now)

    passes = [Background(run) for _ in range(2)]
    reports = [one.join() for one in passes]

    requeued = reports[0].requeued + reports[1].requeued
    assert sorted(requeued) == sorted(str(job.id) for job in jobs)
    assert sorted(run_tasks()) == sorted(f"orchestrate-{job.id}" for job in jobs)
    for job in jobs:
        wait_for_status(api, alice, str(job.id), {"EXECUTION_COMPLETED"})
        assert services.stats("job")["executions"][str(job.id)] == 1


def test_a_pass_out_of_time_leaves_the_rest_unclaimed_for_the_next(api, services, alice):
    job = _stuck_job(alice, b"found by the second pass")

    first = reconcile(stuck_after=STUCK_AFTER, now=_in_the_era(), budget_seconds=0)

    assert first.requeued == []
    assert Job.objects.get(pk=job.pk).checked_at is None  # not claimed, so not lost
    second = reconcile(stuck_after=STUCK_AFTER, now=_in_the_era())
    assert second.requeued == [str(job.id)]
    wait_for_status(api, alice, str(job.id), {"EXECUTION_COMPLETED"})


def test_a_claimed_job_is_not_claimed_again_within_the_window(api, services, alice):
    job = _stuck_job(alice, b"claimed once")
    now = _in_the_era()

    first = reconcile(stuck_after=STUCK_AFTER, now=now)
    second = reconcile(stuck_after=STUCK_AFTER, now=now)

    assert first.requeued == [str(job.id)]
    assert second.requeued == []
    assert run_tasks() == [f"orchestrate-{job.id}"]
    assert Job.objects.get(pk=job.pk).status == "SUBMITTED"
    wait_for_status(api, alice, str(job.id), {"EXECUTION_COMPLETED"})


def test_a_job_stuck_in_stored_is_enqueued_again_and_submitted(api, services, alice):
    job = _stuck_job(alice, b"", status="STORED")
    requests.put(f"{services.urls['blob']}/blobs/{job.id}", data=b"stored", timeout=10)
    Job.objects.filter(pk=job.pk).update(blob_id=str(job.id))

    report = reconcile(stuck_after=STUCK_AFTER, now=_in_the_era())
    run_tasks()

    assert report.requeued == [str(job.id)]
    assert Job.objects.get(pk=job.pk).status == "SUBMITTED"
    wait_for_status(api, alice, str(job.id), {"EXECUTION_COMPLETED"})


def test_the_reconciler_leaves_recent_jobs_alone(services, alice):
    job = _stuck_job(alice, b"just created", age=timedelta(seconds=0))

    report = reconcile(stuck_after=STUCK_AFTER)

    assert str(job.id) not in report.requeued
    Job.objects.filter(pk=job.pk).delete()
    staging.discard(job.id)


# --- submitted jobs nobody polls: refreshed --------------------------------------------------


def test_the_reconciler_refreshes_submitted_jobs_nobody_polls(api, services, alice):
    job_id = submit(api, alice, b"unpolled")["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED"
    wait_until(
        lambda: (
            requests.get(f"{services.urls['job']}/jobs/{job_id}", timeout=5).json()["status"]
            == "SUCCEEDED"
        ),
        "remote SUCCEEDED",
    )
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job_id).update(updated_at=an_hour_ago, checked_at=an_hour_ago)

    report = reconcile(refresh_after=timedelta(minutes=5))

    assert job_id in report.refreshed
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"


# --- staging hygiene: staged inputs go when no retry can need them, and never before ---------


HOURS_AGO = (timezone.now() - timedelta(hours=3)).timestamp()


@pytest.fixture
def owner():
    owner = {"tenant_id": f"hygiene-{uuid.uuid4().hex[:8]}", "sub": "carol"}
    yield owner
    # Made-up jobs (a SUBMITTED one with no remote job) must not reach later tests' stacks.
    Job.objects.filter(**owner).delete()


def _staged(job_id, *, old: bool = False):
    path = staging.staged_path(job_id)
    path.write_bytes(b"input")
    if old:
        os.utime(path, (HOURS_AGO, HOURS_AGO))
    return path


def _job(owner, status, *, updated=None) -> Job:
    job = Job.objects.create(status=status, **owner)
    if updated is not None:
        Job.objects.filter(pk=job.pk).update(updated_at=updated)
    return job


def test_inputs_a_retry_may_need_are_kept(owner):
    created = _staged(_job(owner, "CREATED").id, old=True)
    failed_to_store = _staged(_job(owner, "STORED_ERROR").id, old=True)

    staging_cleanup(now=timezone.now())

    assert created.exists() and failed_to_store.exists()


def test_inputs_blobservice_already_has_are_removed(owner):
    paths = [
        _staged(_job(owner, status).id)
        for status in (
            "STORED",
            "SUBMITTED",
            "SUBMITTED_ERROR",
            "EXECUTION_COMPLETED",
            "EXECUTION_ERROR",
        )
    ]

    removed = staging_cleanup(now=timezone.now())

    assert not any(path.exists() for path in paths)
    assert {path.name for path in paths} <= set(removed)


def test_a_stored_error_input_goes_after_the_retention(owner, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.STAGING_ERROR_RETENTION + 60)
    path = _staged(_job(owner, "STORED_ERROR", updated=long_ago).id)

    staging_cleanup(now=timezone.now())

    assert not path.exists()


def test_an_input_without_a_job_goes_only_after_the_grace_period():
    # The API stages the file just before it inserts the job: a fresh orphan may be that.
    fresh, old = _staged(uuid.uuid4()), _staged(uuid.uuid4(), old=True)

    staging_cleanup(now=timezone.now())

    assert fresh.exists() and not old.exists()
    fresh.unlink()


def test_abandoned_partial_uploads_are_removed_and_live_ones_kept():
    live = staging.new_temp_path()
    live.write_bytes(b"still arriving")
    abandoned = staging.new_temp_path()
    abandoned.write_bytes(b"client went away")
    os.utime(abandoned, (HOURS_AGO, HOURS_AGO))

    staging_cleanup(now=timezone.now())

    assert live.exists() and not abandoned.exists()
    live.unlink()


def test_jobs_are_looked_up_in_chunks(owner, monkeypatch):
    # The embedded MongoDB refuses an `$in` of about 450 ids; lookups go in chunks.
    monkeypatch.setattr("orchestration.reconcile._LOOKUP_CHUNK", 2)
    kept = [_staged(_job(owner, "CREATED").id) for _ in range(3)]
    removed = [_staged(_job(owner, "EXECUTION_COMPLETED").id) for _ in range(3)]

    staging_cleanup(now=timezone.now())

    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in removed)
    for path in kept:
        path.unlink()
