"""Operator re-sends: send a failed or stuck job on its way again, and record who did it and why.

What a retry may do comes from the one transition table (jobs/states.py): an error state with
a way out is moved back to the step that failed (STORED_ERROR -> CREATED, SUBMITTED_ERROR ->
STORED) and orchestrated again. A job stuck in CREATED or STORED (its task was lost) keeps its
status and is only enqueued again: a "requeue". Everything else is skipped, with the reason.
Used by `manage.py retry_jobs` and by the admin's "Retry selected jobs" action.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from jobs import staging
from jobs.models import Job
from jobs.services import job_requeue, job_transition
from jobs.states import ERROR, TRANSITIONS, Status
from orchestration.services import enqueue_orchestration

logger = logging.getLogger(__name__)

# An error state with a way out (one each) is retried along it; EXECUTION_ERROR has none,
# because it is the computation's own verdict and running it again would give the same.
RETRY_TARGET: dict[str, str] = {
    status: target for status in ERROR for target in TRANSITIONS[status]
}
# In flight: the worker moves these on. One the worker has lost is enqueued again as it is.
REQUEUE = frozenset({Status.CREATED, Status.STORED})

# A retry starts the job's budget of task deliveries afresh and forgets the last failure.
_FRESH_START = {
    "attempts": 0,
    "deliveries": 0,
    "error": None,
    "next_attempt_at": None,
    "retrying_since": None,
}
# What the worker does next with a job in each status, for the outcome's detail.
_STEP = {
    Status.CREATED: "next: store the input in BlobService",
    Status.STORED: "next: submit to JobService",
}

Action = Literal["retry", "requeue", "skip"]


@dataclass(frozen=True)
class ResendOutcome:
    job_id: uuid.UUID
    from_status: str
    action: Action
    to_status: str  # equal to from_status for a requeue or a skip
    detail: str


def job_resend(job: Job, *, by: str, reason: str, dry_run: bool = False) -> ResendOutcome:
    """Retry or requeue one job if it can be; say what was (or, in a dry run, would be) done.

    `job` is the caller's copy: every write compares on the status it shows, so a job that
    someone else changed since it was read is reported "changed concurrently", not retried.
    """
    status = job.status

    def skip(detail: str) -> ResendOutcome:
        return ResendOutcome(job.id, status, "skip", status, detail)

    if status in RETRY_TARGET:
        target = RETRY_TARGET[status]
        if status == Status.STORED_ERROR and not staging.staged_path(job.id).exists():
            # BlobService never got the input and the staged copy is gone (cleaned up after
            # STAGING_ERROR_RETENTION): nothing is left to store.
            return skip("staged input is gone; the user must submit again")
        action = "retry"
        if not dry_run and not job_transition(
            job.id,
            from_status=status,
            to_status=target,
            reason=reason,
            by=by,
            fields=_FRESH_START,
        ):
            return skip("changed concurrently")
    elif status in REQUEUE:
        target = status
        action = "requeue"
        if not dry_run and not job_requeue(job, by=by, reason=reason, fields=_FRESH_START):
            return skip("changed concurrently")
    elif status == Status.SUBMITTED:
        return skip("running in JobService; its status is refreshed from there")
    elif status == Status.CANCELLING:
        return skip("being cancelled; the reconciler sends the cancel to JobService again")
    elif status == Status.CANCELLED:
        # The owner asked for it to stop: no operator retry sends it on again.
        return skip("cancelled by its owner; never retried")
    else:
        return skip("final; nothing to retry")

    detail = _STEP[target]
    if not dry_run and not enqueue_orchestration(job.id):
        # The job is in its new state and history; the reconciler (or another retry_jobs run,
        # as a requeue) enqueues it once the broker is back.
        detail = f"{detail}; enqueue failed, the reconciler will pick it up"
    return ResendOutcome(job.id, status, action, target, detail)
