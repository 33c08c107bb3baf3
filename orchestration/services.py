"""The orchestration of one job: store its input in BlobService, then submit it to JobService.

Every step is safe to repeat: blob id and remote job id are the job id, so a redelivered task
overwrites the same blob and re-submits the same job instead of creating duplicates, and every
status change is compare-and-set, so a step that another worker already took is not taken twice.
"""

import logging
import uuid

from jobs.models import Job
from jobs.services import error_detail, job_transition
from jobs.states import Status
from orchestration import staging
from orchestration.clients import blob_service, job_service
from orchestration.clients.http import DownstreamError

logger = logging.getLogger(__name__)


def job_orchestrate(*, job_id: uuid.UUID) -> None:
    try:
        job = Job.objects.get(pk=job_id)
    except Job.DoesNotExist:
        logger.warning("job %s: no such job, nothing to orchestrate", job_id)
        return
    if job.status == Status.CREATED:
        job = job_store_input(job=job)
    if job.status == Status.STORED:
        job = job_submit(job=job)


def job_store_input(*, job: Job) -> Job:
    """CREATED -> STORED (or STORED_ERROR): upload the staged input to BlobService."""
    blob_id = str(job.id)  # derived, so a repeated upload overwrites the same blob
    path = staging.staged_path(job.id)
    if not path.exists():
        _fail(
            job,
            Status.CREATED,
            Status.STORED_ERROR,
            error_detail(service="frontservice", message="staged input is missing"),
        )
    else:
        try:
            blob_service.put_blob(blob_id, path, content_type=job.content_type)
        except DownstreamError as exc:
            _fail(job, Status.CREATED, Status.STORED_ERROR, _error(exc))
        else:
            job_transition(
                job.id,
                from_status=Status.CREATED,
                to_status=Status.STORED,
                reason="input stored in BlobService",
                fields={"blob_id": blob_id},
            )
    job.refresh_from_db()
    if job.status not in (Status.CREATED, Status.STORED_ERROR):
        # BlobService has the input; nothing (no retry) needs the staged copy any more.
        staging.discard(job.id)
    return job


def job_submit(*, job: Job) -> Job:
    """STORED -> SUBMITTED (or SUBMITTED_ERROR): submit the stored blob to JobService."""
    remote_job_id = str(job.id)  # derived, so a repeated submit finds the same remote job
    try:
        job_service.submit_job(remote_job_id, blob_id=job.blob_id)
    except DownstreamError as exc:
        _fail(job, Status.STORED, Status.SUBMITTED_ERROR, _error(exc))
    else:
        job_transition(
            job.id,
            from_status=Status.STORED,
            to_status=Status.SUBMITTED,
            reason="submitted to JobService",
            fields={"remote_job_id": remote_job_id},
        )
    job.refresh_from_db()
    return job


def _error(exc: DownstreamError) -> dict:
    return error_detail(service=exc.service, message=exc.message, status_code=exc.status_code)


def _fail(job: Job, from_status: str, to_status: str, error: dict) -> None:
    logger.warning("job %s: %s: %s", job.id, to_status, error["message"])
    job_transition(
        job.id,
        from_status=from_status,
        to_status=to_status,
        reason=error["message"],
        fields={"error": error},
    )
