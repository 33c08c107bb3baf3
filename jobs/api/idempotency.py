"""Idempotency-Key on POST /api/v1/job: a repeated request gets the first answer, not a new job.

A key belongs to its owner (tenant_id, sub). The first request with a key inserts an
IdempotencyKey record; the unique index on (tenant_id, sub, key) makes that insert the one
atomic step that decides which of several racing requests creates the job. The others find the
record and are answered from it: the stored answer (a replay), 409 while there is none yet, or
422 when their request differs from the one that claimed the key.
"""

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError
from django.utils import timezone
from pymongo.errors import PyMongoError
from rest_framework import status

from frontservice import mongo
from jobs.api import errors
from jobs.api.tokens import Principal
from jobs.api.uploads import StagedUpload
from jobs.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "HTTP_IDEMPOTENCY_KEY"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, no spaces

# How long a claimed key with no answer yet blocks its repeats. Creating a job takes well under
# a second once the body is staged; if the process dies in between (SIGKILL, OOM) or cannot
# record the outcome, the key must not answer 409 for its whole TTL. After this lease the
# record counts as expired, and the next request with the key takes it over.
IN_PROGRESS_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class Replay:
    """The answer stored for a key, to be sent again as it was."""

    status_code: int
    body: dict


def answer_once(
    *,
    owner: Principal,
    key: str | None,
    upload: StagedUpload,
    create: Callable[[], dict],
    callback_url: str | None = None,
) -> tuple[int, dict]:
    """Create the job (`create` returns its document) once per key; repeats get that answer.

    Every request that does not create a job deletes its staged copy of the body.
    """
    if key is None:
        return status.HTTP_202_ACCEPTED, create()
    try:
        claim = begin(
            owner=owner,
            key=key,
            fingerprint=fingerprint(
                content_type=upload.content_type,
                body_sha256=upload.sha256,
                callback_url=callback_url,
            ),
        )
    except BaseException:
        # Refused (409, 422) or failed: no job will ever take this staged copy.
        upload.path.unlink(missing_ok=True)
        raise
    if isinstance(claim, Replay):
        # The first request's job has its own copy of this input.
        upload.path.unlink(missing_ok=True)
        return claim.status_code, claim.body
    try:
        body = create()
    except BaseException:
        # No job was made: the client may retry with the same key straight away.
        abandon(claim)
        raise
    complete(claim, job_id=body["id"], status_code=status.HTTP_202_ACCEPTED, body=body)
    return status.HTTP_202_ACCEPTED, body


def key_from_request(request) -> str | None:
    """The request's Idempotency-Key, None without one; InvalidIdempotencyKey if malformed."""
    key = request.META.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        raise errors.InvalidIdempotencyKey()
    return key


def fingerprint(*, content_type: str, body_sha256: str, callback_url: str | None = None) -> str:
    """What makes two requests "the same": the body, the content type it was sent as, and the
    callback_url. Without a callback the text is what it was before callbacks existed, so keys
    stored then still match their repeats."""
    text = f"{content_type}\n{body_sha256}"
    if callback_url is not None:
        text += f"\n{callback_url}"
    return hashlib.sha256(text.encode()).hexdigest()


def begin(*, owner: Principal, key: str, fingerprint: str) -> IdempotencyKey | Replay:
    """Claim the key for this request (the caller then creates the job), or answer from it.

    Returns the new record when this request is the first with the key, or the Replay of the
    answer the first one got. Raises IdempotencyKeyReused for the key with another request and
    IdempotencyRequestInProgress while the first request has no answer yet.
    """
    # Two rounds: an expired record is removed and the insert tried again, once.
    for _ in range(2):
        now = timezone.now()
        record = IdempotencyKey(
            tenant_id=owner.tenant_id,
            sub=owner.sub,
            key=key,
            request_hash=fingerprint,
            expires_at=now + min(IN_PROGRESS_LEASE, _ttl()),
        )
        try:
            # Not through save() (see frontservice/mongo.py): a keyed POST's two writes to its
            # record cost it as much Python time as the job's own.
            mongo.insert(record)
            return record
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(
            tenant_id=owner.tenant_id, sub=owner.sub, key=key
        ).first()
        if existing is None:
            continue  # removed since our insert (TTL monitor, or a request taking it over)
        if existing.expires_at <= now:
            # MongoDB's TTL monitor runs about once a minute, so an expired record may still be
            # here. Deleted only as it was read: a record that another request has since taken
            # over (a new pk) or answered (a new expiry) stays, and the next round finds it.
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.request_hash != fingerprint:
            raise errors.IdempotencyKeyReused()
        if existing.response_status is None:
            raise errors.IdempotencyRequestInProgress()
        return Replay(status_code=existing.response_status, body=existing.response_body)
    # Lost both rounds to other requests with the same key: one of them holds it now.
    raise errors.IdempotencyRequestInProgress()


def complete(record: IdempotencyKey, *, job_id: str, status_code: int, body: dict) -> None:
    """Store the answer the key's request got, for the key's whole TTL from its first use."""
    try:
        # Only the claim this request made: if its lease ran out and another request took
        # the key over, that request's record is not ours to answer for.
        stored = mongo.compare_and_set(
            IdempotencyKey,
            record.pk,
            match={"response_status": None},
            changes={
                "job": job_id,
                "response_status": status_code,
                "response_body": dict(body),
                "expires_at": record.created_at + _ttl(),
            },
        )
    except (DatabaseError, PyMongoError):
        # The job exists and the user gets its answer; a repeat gets 409 until the lease ends.
        logger.exception("idempotency key %s: the answer could not be stored", record.pk)
        return
    if stored is None:
        logger.warning("idempotency key %s: the claim had expired; answer not stored", record.pk)


def abandon(record: IdempotencyKey) -> None:
    """Forget a claim whose job could not be created, so the key can be retried at once."""
    try:
        IdempotencyKey.objects.filter(pk=record.pk, response_status__isnull=True).delete()
    except (DatabaseError, PyMongoError):
        # The caller is re-raising the job's own error; this one must not replace it.
        logger.exception("idempotency key %s: the claim could not be released", record.pk)


def _ttl() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
