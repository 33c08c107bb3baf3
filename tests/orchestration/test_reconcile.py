"""Staging hygiene: staged inputs go when no retry can need them, and never before."""

import os
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import staging
from jobs.models import Job
from orchestration.reconcile import staging_cleanup

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
