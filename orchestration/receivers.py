"""What the worker tier does when the domain announces a change (jobs/signals.py)."""

from jobs.models import Job
from orchestration.services import enqueue_orchestration


def enqueue_created_job(sender, *, job: Job, **kwargs) -> None:
    """A new job: queue its orchestration. Not enqueued (broker down): the job stays CREATED
    and the reconciler enqueues it once it has been idle for RECONCILE_STUCK_AFTER."""
    enqueue_orchestration(job.id)
