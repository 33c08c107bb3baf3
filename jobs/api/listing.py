"""GET /api/v1/job: the caller's own jobs, newest first, a page at a time.

Keyset (cursor) pagination on (created_at, id), both descending: a cursor is the position of
the last job of a page, and the next page is every job strictly after it in that order. Jobs
created while a client pages through are newer than every position it has seen, so they never
push older jobs across a page boundary: no job is skipped or repeated, unlike offset paging.
The id breaks ties between jobs created in the same instant (the database keeps milliseconds).

The page itself is read by jobs.queries.job_page, which names the owner index.
"""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import QueryDict
from django.utils import dateparse

from jobs.api import errors
from jobs.models import Job
from jobs.queries import job_page
from jobs.states import Status

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class ListQuery:
    limit: int
    after: tuple[datetime, uuid.UUID] | None = None  # the cursor: the last job already seen
    statuses: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


def parse_list_query(params: QueryDict) -> ListQuery:
    """The listing's query string, validated; every mistake is a 400 with its own code."""
    return ListQuery(
        limit=_limit(params.get("limit")),
        after=decode_cursor(params["cursor"]) if params.get("cursor") else None,
        statuses=_statuses(params.getlist("status")),
        created_after=_instant(params, "created_after"),
        created_before=_instant(params, "created_before"),
    )


def job_list(*, tenant_id: str, sub: str, query: ListQuery) -> tuple[list[Job], str | None]:
    """One page of the owner's jobs, newest first, and the cursor of the next page (or None)."""
    jobs, more = job_page(
        tenant_id=tenant_id,
        sub=sub,
        limit=query.limit,
        after=query.after,
        statuses=query.statuses,
        created_after=query.created_after,
        created_before=query.created_before,
    )
    return jobs, encode_cursor(jobs[-1]) if more else None


def encode_cursor(job: Job) -> str:
    """The job's position as an opaque token: its created_at (in microseconds) and its id."""
    position = {"t": (job.created_at - _EPOCH) // _MICROSECOND, "i": job.id.hex}
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
        if not isinstance(position["t"], int) or not isinstance(position["i"], str):
            raise TypeError
        return _EPOCH + position["t"] * _MICROSECOND, uuid.UUID(hex=position["i"])
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError):
        raise errors.InvalidCursor() from None


def _limit(value: str | None) -> int:
    if value is None:
        return settings.LIST_DEFAULT_LIMIT
    maximum = settings.LIST_MAX_LIMIT
    digits = value.isascii() and value.isdigit() and len(value) <= 9
    if not digits or not 1 <= int(value) <= maximum:
        raise errors.InvalidLimit(f"limit must be a whole number from 1 to {maximum}.")
    return int(value)


def _statuses(values: list[str]) -> tuple[str, ...]:
    # `status=A&status=B`, `status=A,B` or both; empty items are ignored.
    wanted = [item.strip() for value in values for item in value.split(",") if item.strip()]
    unknown = sorted(set(wanted) - set(Status.values))
    if unknown:
        raise errors.InvalidStatusFilter(
            f"Unknown status {', '.join(unknown)}; the statuses are {', '.join(Status.values)}."
        )
    return tuple(dict.fromkeys(wanted))


def _instant(params: QueryDict, name: str) -> datetime | None:
    value = params.get(name)
    if not value:
        return None
    try:
        instant = dateparse.parse_datetime(value)
        # Without an offset, the time is UTC (the API's own timestamps all are).
        return instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)
    except (ValueError, AttributeError, OverflowError):
        # Not a date-time (None), an impossible one, or one that leaves the calendar in UTC.
        raise errors.InvalidDateFilter(
            f"{name} must be an ISO 8601 date-time such as 2026-01-05T10:00:00Z."
        ) from None
