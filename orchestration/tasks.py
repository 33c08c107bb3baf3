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
    return enqueue_job_task(
        "orchestration.tasks.orchestrate_job",
        job_id,
        group="orchestrate",
        if_failed="enqueue failed; it stays CREATED until re-enqueued",
    )


def enqueue_job_task(func: str, job_id: uuid.UUID, *, group: str, if_failed: str) -> bool:
    """Queue `func(job_id)` as task `<group>-<job id>` on this process's broker; False when the
    broker is unreachable, logged with `if_failed` (what becomes of the job then)."""
    try:
        async_task(
            func,
            str(job_id),
            task_name=f"{group}-{job_id}",
            group=group,
            broker=process_broker(),
        )
    except Exception:
        logger.exception("job %s: %s", job_id, if_failed)
        return False
    return True
