"""django-q2 tasks. Thin: take a job id, call the service; running one twice is harmless."""

import uuid

from orchestration import reconcile, services


def orchestrate_job_task(job_id: str) -> None:
    services.job_orchestrate(job_id=uuid.UUID(job_id))


def reconcile_task() -> str:
    """The periodic reconciler pass (scheduled by orchestration.schedules)."""
    return str(reconcile.reconcile())
