"""Cancelling a job for its owner, as far as the database alone can (the domain's part).

Where the job is decides how:

- CREATED, or STORED with no submit claimed: JobService cannot have the job, so it is CANCELLED
  at once, locally, and nothing is sent downstream. No worker sends it on afterwards: every step
  of the orchestration is compare-and-set on the status (CREATED -> STORED fails now), and a
  worker claims the submit (jobs.services.job_claim_submit, again compare-and-set on STORED)
  before it sends anything to JobService. Its staged input is deleted right after the
  compare-and-set (see `_discard_staged_input`).
- SUBMITTED, or STORED with the submit claimed (the worker's PUT may be in flight): CANCELLING.
  The cancel in JobService is the worker tier's (orchestration/cancel.py); JobService's answer
  decides the end: CANCELLED, or, when the job finished just before the cancel arrived, the
  final state it finished in.
- CANCELLING or CANCELLED: nothing more is done.
- Any other final state (the errors included): left as it is; the view answers 409.
"""

import logging

from jobs import staging
from jobs.models import Job
from jobs.services import job_transition
from jobs.states import FINAL, Status

logger = logging.getLogger(__name__)

REASON = "cancelled by its owner"
# Each round follows one change someone else made between our read and our compare-and-set
# (CREATED -> STORED -> claimed -> SUBMITTED -> final); more rounds than that cannot happen.
_ROUNDS = 5


def job_cancel_locally(job: Job, *, by: str = "owner") -> Job:
    """CANCELLED where JobService cannot have the job, else CANCELLING; return the job as it is
    stored afterwards (a CANCELLING job is for orchestration.cancel.job_cancel_downstream)."""
    for _ in range(_ROUNDS):
        if job.status in FINAL or job.status == Status.CANCELLING:
            return job
        if job.status == Status.CREATED:
            applied = job_transition(
                job.id, from_status=Status.CREATED, to_status=Status.CANCELLED, reason=REASON, by=by
            )
        elif job.status == Status.STORED and not job.remote_job_id:
            # Only while no worker has claimed the submit: a claim made since our read makes
            # this fail, and the next round cancels it in JobService instead.
            applied = job_transition(
                job.id,
                from_status=Status.STORED,
                to_status=Status.CANCELLED,
                reason=f"{REASON} (not submitted)",
                by=by,
                match={"remote_job_id": ""},
            )
        else:  # SUBMITTED, or STORED with its submit claimed
            applied = job_transition(
                job.id,
                from_status=job.status,
                to_status=Status.CANCELLING,
                reason=f"{REASON} (cancelling in JobService)",
                by=by,
            )
            if applied:
                job.refresh_from_db()
                return job
        job.refresh_from_db()
        if applied:
            _discard_staged_input(job)
            return job
    return job


def _discard_staged_input(job: Job) -> None:
    """Delete a job's staged input once it is CANCELLED: nothing can need it any more.

    Only after the compare-and-set, never before: until then a worker may be uploading it. A
    worker whose upload is streaming keeps reading its open file (deleting a file unlinks its
    name, not the bytes under an open descriptor); one that opens it later finds it missing and
    stops without a status change (orchestration.services.job_store_input), and in any case
    its CREATED -> STORED or CREATED -> STORED_ERROR compare-and-set fails on a CANCELLED job.
    """
    staging.discard(job.id)
