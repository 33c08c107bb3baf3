"""Enqueueing a task: the one place that hands work to django-q2, for every app.

A task carries a job id, never a blob or a document: the task reads the job when it runs, so a
redelivered or late task acts on the job as it is then.
"""

import logging
import uuid

from django_q.tasks import async_task

from frontservice.broker import JOBS, process_broker

logger = logging.getLogger(__name__)


def enqueue_task(
    func: str, job_id: uuid.UUID, *, group: str, if_failed: str, queue: str = JOBS
) -> bool:
    """Queue `func(job_id)` as task `<group>-<job id>` on `queue` (frontservice.broker.QUEUES);
    False when the broker is unreachable, logged with `if_failed` (what becomes of the job
    then)."""
    try:
        async_task(
            func,
            str(job_id),
            task_name=f"{group}-{job_id}",
            group=group,
            broker=process_broker(queue),
        )
    except Exception:
        logger.exception("job %s: %s", job_id, if_failed)
        return False
    return True
