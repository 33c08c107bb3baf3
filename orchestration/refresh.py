"""Refreshing a job from JobService: the status requests, `Prefer: wait` and the reconciler
ask here about jobs JobService is running (the seed: a status that may still change is never
answered from the database alone)."""

import logging

from frontservice.downstream import DownstreamError
from jobs.models import Job
from jobs.services import job_settle
from jobs.states import REMOTE_STATUS, Status
from orchestration.cancel import job_cancel_downstream
from orchestration.clients import job_service

logger = logging.getLogger(__name__)


def job_refresh(job: Job) -> Job:
    """Ask JobService about a SUBMITTED job, store what changed, return the current job.

    A CANCELLING job's cancel is sent to JobService again instead (orchestration/cancel.py).
    """
    if job.status == Status.CANCELLING:
        return job_cancel_downstream(job)
    if job.status != Status.SUBMITTED:
        return job
    try:
        remote = job_service.get_job(job.remote_job_id)
    except DownstreamError as exc:
        # The user gets the last known status; the next poll asks again.
        logger.warning("job %s: status refresh failed: %s", job.id, exc)
        return job
    target = REMOTE_STATUS.get(remote.status)
    if target is None:
        return job
    return job_settle(
        job,
        to_status=target,
        reason=f"JobService reported {remote.status}",
        remote_error=remote.error or remote.status,
    )
