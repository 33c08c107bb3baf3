"""jobs.cancel.job_cancel_locally: the owner's cancel as far as the database alone can take it,
against every step a worker may take between the cancel's read of the job and its write.

The worker's steps are the domain's own compare-and-sets (jobs.services.job_transition and
job_claim_submit), made on the real database in between; nothing is sent downstream here (the
cancel in JobService is tests/orchestration/test_cancel.py's).
"""

import uuid

import pytest

from jobs import staging
from jobs.cancel import job_cancel_locally
from jobs.models import Job
from jobs.services import job_claim_submit, job_settle, job_transition
from tests.support.worker import a_job, transitions


def _stored(owner, **fields) -> Job:
    return a_job(owner, "STORED", blob_id="blob", **fields)


def _worker_stores(job: Job) -> None:
    assert job_transition(
        job.id, from_status="CREATED", to_status="STORED", reason="input stored in BlobService"
    )


def _worker_submits(job: Job) -> None:
    assert job_transition(
        job.id, from_status="STORED", to_status="SUBMITTED", reason="submitted to JobService"
    )


# --- where JobService cannot have the job: CANCELLED at once ---------------------------------


def test_a_created_job_is_cancelled_and_its_staged_input_deleted(alice):
    job = a_job(alice, "CREATED")
    staging.staged_path(job.id).write_bytes(b"never stored")

    cancelled = job_cancel_locally(job)

    assert cancelled.status == "CANCELLED"
    assert Job.objects.get(pk=job.pk).status == "CANCELLED"
    assert transitions(job.id) == [("CREATED", "CANCELLED")]
    assert cancelled.history[0]["by"] == "owner"
    assert cancelled.history[0]["reason"] == "cancelled by its owner"
    assert not staging.staged_path(job.id).exists()


def test_who_cancelled_is_recorded(alice):
    job = a_job(alice, "CREATED")

    cancelled = job_cancel_locally(job, by="operator:carol")

    assert cancelled.history[-1]["by"] == "operator:carol"


def test_a_stored_job_whose_submit_nobody_claimed_is_cancelled(alice):
    job = _stored(alice)
    staging.staged_path(job.id).write_bytes(b"stored already")

    cancelled = job_cancel_locally(job)

    assert cancelled.status == "CANCELLED"
    assert transitions(job.id) == [("STORED", "CANCELLED")]
    assert cancelled.history[0]["reason"] == "cancelled by its owner (not submitted)"
    assert not staging.staged_path(job.id).exists()
    # The worker comes to claim the submit afterwards: its claim fails, nothing is sent.
    assert not job_claim_submit(job.id, remote_job_id=str(job.id))
    assert Job.objects.get(pk=job.pk).remote_job_id == ""


def test_a_worker_storing_the_input_after_the_cancel_moves_nothing(alice):
    job = a_job(alice, "CREATED")

    job_cancel_locally(job)

    assert not job_transition(
        job.id, from_status="CREATED", to_status="STORED", reason="input stored in BlobService"
    )
    assert not job_transition(
        job.id, from_status="CREATED", to_status="STORED_ERROR", reason="upload failed"
    )
    assert Job.objects.get(pk=job.pk).status == "CANCELLED"
    assert transitions(job.id) == [("CREATED", "CANCELLED")]


# --- where JobService may have the job: CANCELLING, for the worker tier to finish ------------


def test_a_stored_job_with_its_submit_claimed_is_cancelling(alice):
    job = _stored(alice)
    assert job_claim_submit(job.id, remote_job_id=str(job.id))
    job.refresh_from_db()

    cancelling = job_cancel_locally(job)

    assert cancelling.status == "CANCELLING"
    assert transitions(job.id) == [("STORED", "CANCELLING")]
    assert cancelling.history[0]["reason"] == "cancelled by its owner (cancelling in JobService)"


def test_a_submitted_job_is_cancelling(alice):
    job = a_job(alice, "SUBMITTED", blob_id="blob", remote_job_id="remote")
    staging.staged_path(job.id).write_bytes(b"left over")

    cancelling = job_cancel_locally(job)

    assert cancelling.status == "CANCELLING"
    assert transitions(job.id) == [("SUBMITTED", "CANCELLING")]
    # Only a CANCELLED job's input is deleted by the cancel; the reconciler cleans up this one.
    assert staging.staged_path(job.id).exists()
    staging.discard(job.id)


# --- the worker moved the job between the cancel's read and its write ------------------------


def test_the_worker_stored_the_input_after_the_cancel_read_the_job(alice):
    job = a_job(alice, "CREATED")
    stale = Job.objects.get(pk=job.pk)
    _worker_stores(job)

    cancelled = job_cancel_locally(stale)

    # CREATED -> CANCELLED failed; the next round finds it STORED, with no submit claimed.
    assert cancelled.status == "CANCELLED"
    assert transitions(job.id) == [("CREATED", "STORED"), ("STORED", "CANCELLED")]


def test_the_worker_claimed_the_submit_after_the_cancel_read_the_job(alice):
    job = _stored(alice)
    stale = Job.objects.get(pk=job.pk)  # STORED, no submit claimed
    assert job_claim_submit(job.id, remote_job_id=str(job.id))

    cancelling = job_cancel_locally(stale)

    # STORED -> CANCELLED matched on no claim and failed: JobService may get the job now.
    assert cancelling.status == "CANCELLING"
    assert cancelling.remote_job_id == str(job.id)
    assert transitions(job.id) == [("STORED", "CANCELLING")]


def test_the_worker_submitted_after_the_cancel_read_the_job(alice):
    job = _stored(alice)
    stale = Job.objects.get(pk=job.pk)
    assert job_claim_submit(job.id, remote_job_id=str(job.id))
    _worker_submits(job)

    cancelling = job_cancel_locally(stale)

    assert cancelling.status == "CANCELLING"
    assert transitions(job.id) == [("STORED", "SUBMITTED"), ("SUBMITTED", "CANCELLING")]


def test_the_worker_went_all_the_way_after_the_cancel_read_the_job(alice):
    job = a_job(alice, "CREATED")
    stale = Job.objects.get(pk=job.pk)
    _worker_stores(job)
    assert job_claim_submit(job.id, remote_job_id=str(job.id))
    _worker_submits(job)

    cancelling = job_cancel_locally(stale)

    assert cancelling.status == "CANCELLING"
    assert transitions(job.id)[-1] == ("SUBMITTED", "CANCELLING")


@pytest.mark.parametrize("final", ["EXECUTION_COMPLETED", "EXECUTION_ERROR"])
def test_a_job_that_finished_after_the_cancel_read_it_keeps_its_end(alice, final):
    job = a_job(alice, "SUBMITTED", blob_id="blob", remote_job_id="remote")
    stale = Job.objects.get(pk=job.pk)
    job_settle(job, to_status=final, reason=f"JobService reported {final}")

    after = job_cancel_locally(stale)

    assert after.status == final
    assert transitions(job.id) == [("SUBMITTED", final)]


def test_two_cancels_at_once_record_one(alice):
    job = a_job(alice, "CREATED")
    first, second = Job.objects.get(pk=job.pk), Job.objects.get(pk=job.pk)

    assert job_cancel_locally(first).status == "CANCELLED"
    assert job_cancel_locally(second).status == "CANCELLED"

    assert transitions(job.id) == [("CREATED", "CANCELLED")]


# --- nothing left to do ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "CANCELLING",
        "CANCELLED",
        "STORED_ERROR",
        "SUBMITTED_ERROR",
        "EXECUTION_COMPLETED",
        "EXECUTION_ERROR",
    ],
)
def test_a_cancelling_or_final_job_is_left_as_it_is(alice, status):
    job = a_job(alice, status, remote_job_id=str(uuid.uuid4()))

    after = job_cancel_locally(job)

    assert after.status == status
    assert Job.objects.get(pk=job.pk).status == status
    assert Job.objects.get(pk=job.pk).history == []
