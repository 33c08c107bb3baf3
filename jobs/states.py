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


# from-status -> statuses it may move to. The seed's diagram, plus the operator retries
# (ARCHITECTURE.md): STORED_ERROR -> CREATED needs the staged input; SUBMITTED_ERROR -> STORED.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.CREATED: frozenset({Status.STORED, Status.STORED_ERROR}),
    Status.STORED: frozenset({Status.SUBMITTED, Status.SUBMITTED_ERROR}),
    Status.SUBMITTED: frozenset({Status.EXECUTION_COMPLETED, Status.EXECUTION_ERROR}),
    Status.STORED_ERROR: frozenset({Status.CREATED}),
    Status.SUBMITTED_ERROR: frozenset({Status.STORED}),
    Status.EXECUTION_COMPLETED: frozenset(),
    Status.EXECUTION_ERROR: frozenset(),
}

# Final for users: nothing changes them but an operator's retry, so they are answered locally.
ERROR = frozenset({Status.STORED_ERROR, Status.SUBMITTED_ERROR, Status.EXECUTION_ERROR})
FINAL = ERROR | {Status.EXECUTION_COMPLETED}

# JobService's statuses, as the FrontService status they mean (None: still running).
REMOTE_STATUS = {
    "QUEUED": None,
    "RUNNING": None,
    "SUCCEEDED": Status.EXECUTION_COMPLETED,
    "FAILED": Status.EXECUTION_ERROR,
    # Nobody but FrontService cancels, and it has no cancel yet: an outside cancel is a failure.
    "CANCELLED": Status.EXECUTION_ERROR,
}


def can_transition(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())
