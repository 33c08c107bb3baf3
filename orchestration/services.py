"""The orchestration of one job: store its input in BlobService, then submit it to JobService.

Every step is safe to repeat: blob id and remote job id are the job id, so a redelivered task
overwrites the same blob and re-submits the same job instead of creating duplicates, and every
status change is compare-and-set, so a step that another worker already took is not taken twice.
A task makes one attempt of a step and releases its worker. A transient failure is recorded
on the job, which stays in its in-flight status with its next attempt due later
(frontservice/backoff.py); the dispatcher (orchestration/dispatch.py) enqueues it then. Only
after DOWNSTREAM_RETRY_HORIZON of transient failures, or at once on a permanent one, does the job
move to its error state, with the last error and the attempts made. While a service's circuit
is open (orchestration/breaker.py) its jobs wait without calling it.

The owner may cancel at any point (jobs/cancel.py, orchestration/cancel.py). A job cancelled
before its submit is never sent to JobService: the submit is claimed by compare-and-set on
STORED before anything is sent, and every attempt checks the job is still STORED. A worker that
loses the race to a cancel deletes the blob it stored (best effort); one whose submit was in
flight when the cancel came sends the cancel to JobService itself once its submit is over.
"""

import contextlib
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from frontservice import mongo
from frontservice.backoff import Schedule
from frontservice.downstream import DownstreamError
from frontservice.queue import enqueue_task
from jobs import staging
from jobs.models import Job
from jobs.services import error_detail, job_claim_submit, job_transition
from jobs.states import Status
from orchestration.breaker import circuit_allows, circuit_record_failure, circuit_record_success
from orchestration.cancel import job_cancel_downstream
from orchestration.clients import blob_service, job_service

logger = logging.getLogger(__name__)

# The error state each in-flight status falls into when its step gives up.
_ERROR_OF = {Status.CREATED: Status.STORED_ERROR, Status.STORED: Status.SUBMITTED_ERROR}
# The downstream service each in-flight status's step calls (its circuit, its errors).
SERVICE_OF = {Status.CREATED: "blobservice", Status.STORED: "jobservice"}


def enqueue_orchestration(job_id: uuid.UUID) -> bool:
    """Queue the orchestration of a job; False (logged) when the broker is unreachable."""
    return enqueue_task(
        "orchestration.tasks.orchestrate_job_task",
        job_id,
        group="orchestrate",
        if_failed="enqueue failed; it stays CREATED until re-enqueued",
    )


def job_orchestrate(*, job_id: uuid.UUID) -> None:
    job = _start_delivery(job_id)
    if job is None:
        return
    if job.deliveries > settings.ORCHESTRATION_MAX_ATTEMPTS:
        # Delivered again and again without recording an outcome: the task keeps dying (killed
        # worker, timeout). Stop here instead of looping forever; an operator can retry it.
        message = f"gave up after {job.deliveries - 1} orchestration deliveries that did not finish"
        _fail(job, job.status, error_detail(service="frontservice", message=message))
        return
    if job.status == Status.CREATED:
        job = job_store_input(job=job)
    if job.status == Status.STORED:
        job_submit_to_jobservice(job=job)


def _start_delivery(job_id: uuid.UUID) -> Job | None:
    """Count this delivery on the job (and mark it active for the reconciler), if it is in
    flight and its next attempt is due (a task delivered early, twice, leaves it waiting)."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    updated = Job.objects.filter(due, pk=job_id, status__in=list(_ERROR_OF)).update(
        deliveries=F("deliveries") + 1, checked_at=now
    )
    if not updated:
        logger.info(
            "job %s: not in flight or not due (gone, final, waiting); nothing to do", job_id
        )
        return None
    return Job.objects.get(pk=job_id)


def job_store_input(*, job: Job) -> Job:
    """CREATED -> STORED (or STORED_ERROR): upload the staged input to BlobService."""
    blob_id = str(job.id)  # derived, so a repeated upload overwrites the same blob
    path = staging.staged_path(job.id)

    def upload():
        # put_blob opens the file on every attempt: a consumed stream is never re-sent. A cancel
        # deletes the file (jobs/cancel.py), so an attempt after one finds it gone.
        try:
            return blob_service.put_blob(blob_id, path, content_type=job.content_type)
        except FileNotFoundError:
            raise _StagedInputGone from None

    try:
        _run_step(job, upload, done="input stored in BlobService", fields={"blob_id": blob_id})
    except _StagedInputGone:
        # Cancelled (the usual reason): CREATED -> STORED_ERROR fails, compare-and-set, and the
        # job stays CANCELLED. Still CREATED: the input was lost, which is the job's error.
        message = "staged input is missing"
        _fail(job, Status.CREATED, error_detail(service="frontservice", message=message))
    job.refresh_from_db()
    if job.status not in (Status.CREATED, Status.STORED_ERROR):
        # BlobService has the input (or the job was cancelled); no retry needs the staged copy.
        staging.discard(job.id)
    if job.status == Status.CANCELLED:
        # Cancelled while this upload ran: CREATED -> STORED failed, and the blob is ours alone.
        _delete_blob(job, blob_id)
    return job


def job_submit_to_jobservice(*, job: Job) -> Job:
    """STORED -> SUBMITTED (or SUBMITTED_ERROR): submit the stored blob to JobService."""
    remote_job_id = str(job.id)  # derived, so a repeated submit finds the same remote job
    if not job_claim_submit(job.id, remote_job_id=remote_job_id):
        # Cancelled (or moved on by another worker) before anything was sent.
        job.refresh_from_db()
        if job.status == Status.CANCELLED:
            _delete_blob(job, job.blob_id)
        return job

    def submit():
        # Checked before every attempt: a cancel that landed during the backoff must not be
        # followed by a submit (the cancel has moved the job to CANCELLING).
        if not Job.objects.filter(pk=job.id, status=Status.STORED).exists():
            raise _NoLongerStored
        return job_service.submit_job(remote_job_id, blob_id=job.blob_id)

    # Leaving STORED mid-step is no failure of the step: nothing more is sent, nothing recorded.
    with contextlib.suppress(_NoLongerStored):
        _run_step(
            job, submit, done="submitted to JobService", fields={"remote_job_id": remote_job_id}
        )
    job.refresh_from_db()
    if job.status == Status.CANCELLING:
        # The owner cancelled while this submit was claimed. It is over now, so JobService's
        # answer to the cancel is conclusive, including "no such job".
        job = job_cancel_downstream(job, submit_over=True)
    return job


class _StagedInputGone(Exception):
    """The staged input is not there (any more) when an upload attempt opens it."""


class _NoLongerStored(Exception):
    """The job left STORED (a cancel) before a submit attempt: stop without sending it."""


def _delete_blob(job: Job, blob_id: str) -> None:
    if not blob_id:
        return
    try:
        deleted = blob_service.delete_blob(blob_id)
    except DownstreamError as exc:
        # Harmless if it stays: nothing reads the blob of a cancelled job.
        logger.info("job %s: blob of the cancelled job not deleted: %s", job.id, exc)
    else:
        # Not there: the cancel came before any upload of it finished.
        logger.info("job %s: cancelled; its blob %s", job.id, "deleted" if deleted else "absent")


# The status each in-flight status moves to when its step succeeds.
_NEXT_OF = {Status.CREATED: Status.STORED, Status.STORED: Status.SUBMITTED}
# What a step that is over (done, or given up) leaves of its retries.
_STEP_OVER = {"deliveries": 0, "next_attempt_at": None, "retrying_since": None}


def _run_step(job: Job, call, *, done: str, fields: dict) -> None:
    """One attempt of the step; then the compare-and-set to its success state, its error state,
    or its next attempt (the job stays in its status)."""
    service = SERVICE_OF[job.status]
    if not circuit_allows(service):
        _wait_for_circuit(job, service)
        return
    attempts = job.attempts + 1
    try:
        call()
    except DownstreamError as error:
        if error.retryable:
            circuit_record_failure(service)
            _retry_later(job, error, attempts=attempts)
        else:
            circuit_record_success(service)  # it answered: up, and refusing this job
            _fail(job, job.status, {**_detail(error), "attempts": attempts})
        return
    circuit_record_success(service)
    job_transition(
        job.id,
        from_status=job.status,
        to_status=_NEXT_OF[job.status],
        reason=f"{done} ({_tries(attempts)})",
        # The next step counts its own attempts; the last error was this step's.
        fields={**fields, **_STEP_OVER, "attempts": 0, "error": None},
    )


def schedule() -> Schedule:
    return Schedule(
        base=settings.DOWNSTREAM_RETRY_BASE,
        cap=settings.DOWNSTREAM_RETRY_CAP,
        horizon=settings.DOWNSTREAM_RETRY_HORIZON,
    )


def _retry_later(job: Job, error: DownstreamError, *, attempts: int) -> None:
    """Record a transient failure: the attempt, the error, and when the next attempt is due;
    or, past the horizon, the step's error state."""
    now = timezone.now()
    since = job.retrying_since or now
    retrying_for = (now - since).total_seconds()
    detail = {**_detail(error), "attempts": attempts}
    if schedule().gives_up(retrying_for=retrying_for):
        _fail(job, job.status, detail)
        return
    delay = schedule().delay(attempts, retrying_for=retrying_for, retry_after=error.retry_after)
    due = now + timedelta(seconds=delay)
    recorded = _record_wait(
        job, now=now, since=since, due=due, fields={"attempts": attempts, "error": detail}
    )
    if recorded:
        logger.info(
            "job %s: %s attempt %d failed (%s); next attempt in %.2fs",
            job.id,
            SERVICE_OF[job.status],
            attempts,
            error,
            delay,
        )


def _wait_for_circuit(job: Job, service: str) -> None:
    """The service's circuit is open: no attempt; the job waits, due now, and the dispatcher
    releases it when the circuit closes. The horizon still counts."""
    now = timezone.now()
    since = job.retrying_since or now
    if schedule().gives_up(retrying_for=(now - since).total_seconds()):
        error = job.error or error_detail(
            service=service, message=f"{service} unavailable (its circuit is open)"
        )
        _fail(job, job.status, {**error, "attempts": job.attempts})
        return
    _record_wait(job, now=now, since=since, due=now, fields={})
    logger.info("job %s: %s circuit open; waiting", job.id, service)


def _record_wait(job: Job, *, now, since, due, fields: dict) -> bool:
    """Compare-and-set on the status the attempt was made in: a cancel or another worker that
    moved the job on meanwhile wins, and nothing is recorded."""
    changed = mongo.compare_and_set(
        Job,
        job.id,
        match={"status": job.status},
        changes={
            **fields,
            "deliveries": 0,  # this delivery recorded its outcome: it did not die
            "next_attempt_at": due,
            "retrying_since": since,
            "updated_at": now,
        },
    )
    return changed is not None


def _tries(attempts: int) -> str:
    return f"{attempts} attempt{'s' if attempts != 1 else ''}"


def _detail(error: DownstreamError) -> dict:
    return error_detail(service=error.service, message=error.message, status_code=error.status_code)


def _fail(job: Job, from_status: str, error: dict) -> None:
    to_status = _ERROR_OF[from_status]
    applied = job_transition(
        job.id,
        from_status=from_status,
        to_status=to_status,
        reason=error["message"],
        fields={"error": error, "attempts": error.get("attempts", job.attempts), **_STEP_OVER},
    )
    if applied:
        logger.warning("job %s: %s: %s", job.id, to_status, error["message"])
    else:
        # Changed since it was read: a cancel, or another worker. Its state stands.
        logger.info("job %s: not %s any more; %s not recorded", job.id, from_status, to_status)
