"""django-q2 tasks. Thin: take a job id, call the service; running one twice is harmless."""

import logging
import uuid

from django_q.tasks import async_task

from orchestration import services
from orchestration.broker import process_broker

logger = logging.getLogger(__name__)


def orchestrate_job(job_id: str) -> None:
    services.job_orchestrate(job_id=uuid.UUID(job_id))


def reconcile() -> str:
    """The periodic reconciler pass (scheduled by orchestration.schedules)."""
    from orchestration.reconcile import reconcile as reconcile_pass

    return str(reconcile_pass())


def enqueue_orchestration(job_id: uuid.UUID) -> bool:
    """Queue the orchestration of a job; False (logged) when the broker is unreachable."""
    try:
        async_task(
            "orchestration.tasks.orchestrate_job",
            str(job_id),
            task_name=f"orchestrate-{job_id}",
            group="orchestrate",
            broker=process_broker(),
        )
    except Exception:
        logger.exception("job %s: enqueue failed; it stays CREATED until re-enqueued", job_id)
        return False
    return True
