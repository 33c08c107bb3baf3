"""Cancelling a job for its owner (`POST /api/v1/job/{id}/cancel`).

Where the job is decides how:

- CREATED, or STORED with no submit claimed: JobService cannot have the job, so it is CANCELLED
  at once, locally, and nothing is sent downstream. No worker sends it on afterwards: every step
  of the orchestration is compare-and-set on the status (CREATED -> STORED fails now), and a
  worker claims the submit (jobs.services.job_claim_submit, again compare-and-set on STORED)
  before it sends anything to JobService. Its staged input is deleted right after the
  compare-and-set (see `_discard_staged_input`).
- SUBMITTED, or STORED with the submit claimed (the worker's PUT may be in flight): CANCELLING,
  then `DELETE /jobs/{id}` to JobService, whose answer decides the end: CANCELLED, or, when the
  job finished just before the cancel arrived, the final state it finished in.
- CANCELLING or CANCELLED: nothing more is done, and nothing is sent downstream again.
- Any other final state (the errors included): left as it is; the view answers 409.

A job that stays CANCELLING (JobService could not be reached) is finished by whoever comes next:
a status request (jobs.services.job_refresh), the reconciler, or the worker whose submit it was.
All of them go through job_cancel_downstream, compare-and-set from CANCELLING, so exactly one
records the end.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_settle, job_transition
from jobs.states import FINAL, REMOTE_STATUS, Status
from orchestration import staging

logger = logging.getLogger(__name__)

REASON = "cancelled by its owner"
# Each round follows one change someone else made between our read and our compare-and-set
# (CREATED -> STORED -> claimed -> SUBMITTED -> final); more rounds than that cannot happen.
_ROUNDS = 5


def job_cancel(job: Job, *, by: str = "owner") -> Job:
    """Cancel the job as far as it can be now; return it as it is stored afterwards."""
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
                return job_cancel_downstream(job)
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
    stops without a status change (orchestration/services.py job_store_input), and in any case
    its CREATED -> STORED or CREATED -> STORED_ERROR compare-and-set fails on a CANCELLED job.
    """
    staging.discard(job.id)


def job_cancel_downstream(job: Job, *, submit_over: bool = False) -> Job:
    """CANCELLING: cancel the job in JobService and store the state that ends it.

    Stays CANCELLING (logged) when JobService cannot be reached, for the next caller to retry.
    JobService not knowing the job is conclusive only once no submit of it can be in flight:
    for the worker that claimed it, after its own submit (`submit_over`); for anyone else, once
    the job has been CANCELLING longer than a task may run (Q_TIMEOUT).
    """
    from orchestration.clients import job_service
    from orchestration.clients.http import DownstreamError

    if job.status != Status.CANCELLING:
        return job
    remote_job_id = job.remote_job_id or str(job.id)
    try:
        remote = _cancel_remote(remote_job_id)
    except job_service.RemoteJobNotFound:
        if not (submit_over or _no_submit_in_flight(job)):
            logger.info("job %s: not in JobService (yet); its submit may be in flight", job.id)
            return job
        return job_settle(
            job, to_status=Status.CANCELLED, reason="cancelled; JobService never had it"
        )
    except DownstreamError as exc:
        logger.warning("job %s: cancel in JobService failed: %s", job.id, exc)
        return job
    target = REMOTE_STATUS.get(remote.status)
    if target is None:
        # A cancel answered with a job still running breaks JobService's contract; ask again
        # later rather than guess.
        logger.warning("job %s: JobService answered the cancel with %s", job.id, remote.status)
        return job
    reason = f"JobService reported {remote.status} on cancel"
    return job_settle(job, to_status=target, reason=reason, remote=remote)


def _cancel_remote(remote_job_id: str):
    from orchestration.clients import job_service
    from orchestration.clients.http import DownstreamError

    try:
        return job_service.cancel_job(remote_job_id)
    except DownstreamError as exc:
        if exc.code != "job_final":
            raise
    # "Already final" without the job attached: its document says which end it reached.
    return job_service.get_job(remote_job_id)


def _no_submit_in_flight(job: Job) -> bool:
    # The job has been CANCELLING since updated_at (claims by the reconciler move checked_at
    # only); a worker's submit cannot outlive its task, which is killed after Q_TIMEOUT.
    return timezone.now() - job.updated_at > timedelta(seconds=settings.Q_TIMEOUT)
