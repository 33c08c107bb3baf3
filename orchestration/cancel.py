"""Cancelling a job in JobService: the worker tier's part of an owner's cancel.

The domain moves the job first (jobs.cancel.job_cancel_locally): CANCELLED where JobService
cannot have it, CANCELLING where it may. A CANCELLING job's cancel is sent to JobService here,
whose answer decides the end: CANCELLED, or, when the job finished just before the cancel
arrived, the final state it finished in.

A job that stays CANCELLING (JobService could not be reached) is finished by whoever comes next:
a status request (orchestration.refresh.job_refresh), the reconciler, or the worker whose submit
it was. All of them go through job_cancel_downstream, compare-and-set from CANCELLING, so
exactly one records the end.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from frontservice.downstream import DownstreamError
from jobs.cancel import job_cancel_locally
from jobs.models import Job
from jobs.services import job_settle
from jobs.states import REMOTE_STATUS, Status
from orchestration.clients import job_service

logger = logging.getLogger(__name__)


def job_cancel(job: Job, *, by: str = "owner") -> Job:
    """The owner's cancel (`POST /api/v1/job/{id}/cancel`): in the database where JobService
    cannot have the job, in JobService too where it may; return the job as stored afterwards.

    A job that was CANCELLING already is left to whoever made it so: nothing is sent again.
    """
    if job.status == Status.CANCELLING:
        return job
    job = job_cancel_locally(job, by=by)
    if job.status == Status.CANCELLING:
        return job_cancel_downstream(job)
    return job


def job_cancel_downstream(job: Job, *, submit_over: bool = False) -> Job:
    """CANCELLING: cancel the job in JobService and store the state that ends it.

    Stays CANCELLING (logged) when JobService cannot be reached, for the next caller to retry.
    JobService not knowing the job is conclusive only once no submit of it can be in flight:
    for the worker that claimed it, after its own submit (`submit_over`); for anyone else, once
    the job has been CANCELLING longer than a task may run (Q_TIMEOUT).
    """
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
    return job_settle(
        job, to_status=target, reason=reason, remote_error=remote.error or remote.status
    )


def _cancel_remote(remote_job_id: str):
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
