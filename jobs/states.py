"""The job lifecycle in one table. Every status change goes through jobs.services.job_transition."""

from django.db import models


class Status(models.TextChoices):
    CREATED = "CREATED"
    STORED = "STORED"
    STORED_ERROR = "STORED_ERROR"
    SUBMITTED = "SUBMITTED"
    SUBMITTED_ERROR = "SUBMITTED_ERROR"
    EXECUTION_COMPLETED = "EXECUTION_COMPLETED"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


# from-status -> statuses it may move to. The seed's diagram, plus the operator retries
# (ARCHITECTURE.md): STORED_ERROR -> CREATED needs the staged input; SUBMITTED_ERROR -> STORED.
# Plus the owner's cancel (jobs/cancel.py): a job JobService cannot have is CANCELLED at once;
# one it may have is CANCELLING until JobService answers the cancel, and then CANCELLED, or the
# final state it reached just before the cancel arrived (the race with completion).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.CREATED: frozenset({Status.STORED, Status.STORED_ERROR, Status.CANCELLED}),
    # CANCELLING from STORED: a worker has claimed the submit, so its PUT may be in flight.
    Status.STORED: frozenset(
        {Status.SUBMITTED, Status.SUBMITTED_ERROR, Status.CANCELLED, Status.CANCELLING}
    ),
    # SUBMITTED -> CANCELLED: cancelled in JobService directly (an operator), seen on refresh.
    Status.SUBMITTED: frozenset(
        {Status.EXECUTION_COMPLETED, Status.EXECUTION_ERROR, Status.CANCELLING, Status.CANCELLED}
    ),
    Status.CANCELLING: frozenset(
        {Status.CANCELLED, Status.EXECUTION_COMPLETED, Status.EXECUTION_ERROR}
    ),
    Status.STORED_ERROR: frozenset({Status.CREATED}),
    Status.SUBMITTED_ERROR: frozenset({Status.STORED}),
    Status.EXECUTION_COMPLETED: frozenset(),
    Status.EXECUTION_ERROR: frozenset(),
    Status.CANCELLED: frozenset(),
}

# Final for users: nothing changes them but an operator's retry, so they are answered locally.
# The error states are final for cancelling too (409 job_not_cancellable): nothing runs, and
# whether one is sent on again is the operator's call. CANCELLED is final and no error: the
# owner asked for it, and no retry ever sends it on again.
ERROR = frozenset({Status.STORED_ERROR, Status.SUBMITTED_ERROR, Status.EXECUTION_ERROR})
FINAL = ERROR | {Status.EXECUTION_COMPLETED, Status.CANCELLED}

# JobService's statuses, as the FrontService status they mean (None: still running).
REMOTE_STATUS = {
    "QUEUED": None,
    "RUNNING": None,
    "SUCCEEDED": Status.EXECUTION_COMPLETED,
    "FAILED": Status.EXECUTION_ERROR,
    # FrontService's own cancel (a CANCELLING job), or one an operator made in JobService
    # directly: either way nobody wants the job any more, and it has no output.
    "CANCELLED": Status.CANCELLED,
}


def can_transition(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())
