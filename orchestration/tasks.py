"""django-q2 tasks. Thin: take a job id, call the service; running one twice is harmless.

Every line a job's task logs carries the job id and the id of the request that created the job
(the logging context of frontservice/request_log.py), so the service code logs without them.
"""

import uuid

from frontservice.request_log import log_context
from jobs.queries import job_log_fields
from orchestration import reconcile, services


def orchestrate_job_task(job_id: str) -> None:
    with log_context(**job_log_fields(job_id)):
        services.job_orchestrate(job_id=uuid.UUID(job_id))


def reconcile_task() -> str:
    """The periodic reconciler pass (scheduled by orchestration.schedules)."""
    return str(reconcile.reconcile())
