"""How often to poll a job, and holding a status request until the job is final.

`Retry-After` on the status of a job not final tells a client when asking again is useful.
`Prefer: wait=N` (RFC 7240) lets a client ask once and be answered when the job is final, or
after N seconds (at most WAIT_MAX_SECONDS) with the job as it is then.

A held request keeps one gunicorn thread (gunicorn.conf.py: gthread, GUNICORN_THREADS per
process) for up to WAIT_MAX_SECONDS. So that waiting clients can never take every thread and
starve uploads and other reads, at most WAIT_MAX_CONCURRENT requests per process are held at
once; beyond that the preference is simply not applied (the answer comes at once, without
`Preference-Applied`), which RFC 7240 allows for any preference.
"""

import contextlib
import math
import re
import threading
import time

from django.conf import settings
from django.utils import timezone

from jobs.models import Job
from jobs.states import Status
from orchestration.refresh import job_refresh

# RFC 7240 §2: `Prefer: wait=<delta-seconds>`, among other preferences, each perhaps with
# parameters after `;`. Anything else in the header is not ours to judge.
_WAIT = re.compile(r'^\s*wait\s*=\s*"?(\d{1,9})"?\s*$', re.IGNORECASE)
# The first question to JobService while holding comes after this long, then each one after
# twice the last interval, up to WAIT_REFRESH_MAX_SECONDS.
FIRST_REFRESH_SECONDS = 1.0

_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def retry_after(job: Job) -> int | None:
    """Seconds to the next useful poll of a job not final: about a tenth of its age, 1 s at
    least, RETRY_AFTER_MAX_SECONDS at most, and never past a second after its next attempt is
    due, when it waits for one. None for a final job (nothing will change)."""
    if job.is_final:
        return None
    now = timezone.now()
    poll = min(settings.RETRY_AFTER_MAX_SECONDS, int((now - job.created_at).total_seconds() // 10))
    if job.next_attempt_at is not None:
        poll = min(poll, math.ceil((job.next_attempt_at - now).total_seconds()) + 1)
    return max(1, poll)


def requested_wait(prefer: str | None) -> int | None:
    """The seconds of a `wait` preference in a Prefer header, or None.

    A malformed or absent `wait` is ignored, as RFC 7240 asks: never an error. Of several
    `wait` preferences the first counts.
    """
    if not prefer:
        return None
    for preference in prefer.split(","):
        match = _WAIT.match(preference.split(";", 1)[0])
        if match:
            return int(match[1])
    return None


def job_wait_as_preferred(job: Job, *, prefer: str | None) -> tuple[Job, int | None]:
    """The job after honouring the request's `Prefer: wait`, and the seconds applied.

    The seconds are None when there was no (well-formed) wait preference or no slot was free:
    then nothing was held and `Preference-Applied` is not sent. A job already final is answered
    at once, the wait honoured (it is over).
    """
    wait = requested_wait(prefer)
    if wait is None:
        return job, None
    applied = min(wait, settings.WAIT_MAX_SECONDS)
    if job.is_final:
        return job, applied
    with wait_slot() as granted:
        if not granted:
            return job, None
        return job_wait(job, seconds=applied), applied


@contextlib.contextmanager
def wait_slot():
    """Yields True when this request may be held (a slot of WAIT_MAX_CONCURRENT was free)."""
    if settings.WAIT_MAX_CONCURRENT == 0:  # waiting switched off
        yield False
        return
    slots = _process_slots()
    granted = slots.acquire(blocking=False)
    try:
        yield granted
    finally:
        if granted:
            slots.release()


def job_wait(job: Job, *, seconds: float) -> Job:
    """The job once it is final, or as it is after `seconds`.

    Workers and the reconciler move jobs too (CREATED -> STORED -> SUBMITTED, error states), so
    the local database is read every WAIT_POLL_SECONDS, a cheap read by primary key. Only a
    SUBMITTED job needs JobService, and it is asked at a growing interval (1 s, 2 s, 4 s... up
    to WAIT_REFRESH_MAX_SECONDS), never at the database's pace: one held request costs
    JobService a handful of calls, not one per poll.
    """
    deadline = time.monotonic() + seconds
    interval = FIRST_REFRESH_SECONDS
    next_refresh = time.monotonic() + interval
    while not job.is_final:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(settings.WAIT_POLL_SECONDS, left))
        job.refresh_from_db()
        if job.status == Status.SUBMITTED and time.monotonic() >= next_refresh:
            job = job_refresh(job)
            interval = min(interval * 2, settings.WAIT_REFRESH_MAX_SECONDS)
            next_refresh = time.monotonic() + interval
    return job


def _process_slots() -> threading.BoundedSemaphore:
    # Made on first use, once the settings are loaded; one per process, shared by its threads.
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.WAIT_MAX_CONCURRENT)
        return _slots
