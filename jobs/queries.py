"""Reading jobs: the API's reads (one job of its owner, the listing page, the owner's active
jobs), and the selections of the operator commands.

The API's reads are sent with PyMongo (frontservice/mongo.py), not compiled by the ORM: they run
on every request, and compiling the ORM query took more Python time than the rest of a status
request; the documents become Job instances through the ORM's own converters (`mongo.load`).
The listing's page has two more reasons: the query must name its index (`hint`), so that it
walks the owner's (tenant_id, sub, created_at, _id) entries from the cursor on in order, reading
about one page of them, whatever other owners hold; and django-mongodb-backend puts an
`$addFields` between its `$match` and `$sort`, which keeps MongoDB from taking the order from
the index.
"""

import uuid
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from frontservice import mongo
from jobs.models import Job
from jobs.states import FINAL, Status

# The index the page query walks (jobs migration 0006).
LISTING_INDEX = "job_owner_created_id"
# Still on their way through FrontService or JobService.
ACTIVE = [status.value for status in Status if status not in FINAL]


def job_of_owner(*, tenant_id: str, sub: str, job_id: uuid.UUID) -> Job | None:
    """The job `job_id` if it is this owner's; None for another owner's job, as for none."""
    return mongo.find_one(
        Job, _owner(tenant_id, sub) | {Job._meta.pk.column: mongo.to_db(Job, "pk", job_id)}
    )


def jobs_active_count(*, tenant_id: str, sub: str, limit: int) -> int:
    """How many of the owner's jobs are not final yet, counting no further than `limit`
    (the owner's (tenant_id, sub, status) index narrows it to them)."""
    query = _owner(tenant_id, sub) | {mongo.column(Job, "status"): {"$in": ACTIVE}}
    return mongo.count(Job, query, limit=limit)


def _owner(tenant_id: str, sub: str) -> dict:
    return {mongo.column(Job, "tenant_id"): tenant_id, mongo.column(Job, "sub"): sub}


def job_page(
    *,
    tenant_id: str,
    sub: str,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    statuses: tuple[str, ...] = (),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> tuple[list[Job], bool]:
    """Up to `limit` of the owner's jobs, newest first (created_at, then id), strictly after the
    position `after`; and whether more follow."""
    created_at, pk = mongo.column(Job, "created_at"), Job._meta.pk.column
    # The owner first, as in JobViewSet.get_queryset: nothing of another owner is ever read.
    match: dict = _owner(tenant_id, sub)
    bounds: dict = {}
    if created_after is not None:
        bounds["$gt"] = mongo.to_db(Job, "created_at", created_after)
    if created_before is not None:
        bounds["$lt"] = mongo.to_db(Job, "created_at", created_before)
    if after is not None:
        at, job_id = mongo.to_db(Job, "created_at", after[0]), mongo.to_db(Job, "pk", after[1])
        # At or before the position's instant (a range on the index), and of its own instant
        # only the ids below the position's (checked on the index keys, no document read).
        bounds["$lte"] = at
        match["$or"] = [{created_at: {"$lt": at}}, {pk: {"$lt": job_id}}]
    if bounds:
        match[created_at] = bounds
    if statuses:
        match[mongo.column(Job, "status")] = {"$in": list(statuses)}
    jobs = mongo.find(
        Job,
        match,
        sort=[(created_at, -1), (pk, -1)],
        hint=LISTING_INDEX,
        limit=limit + 1,  # one more than the page: is there a next page?
    )
    return jobs[:limit], len(jobs) > limit


def select_jobs(
    *,
    statuses: list[str] | None,
    older_than: timedelta | None,
    tenant: str | None,
    job_ids: list[uuid.UUID] | None,
    limit: int | None,
    where: Q | None = None,
) -> QuerySet[Job]:
    """The jobs matching every given filter (none given: all), least recently changed first.

    `where`: a further condition (`retry_webhooks` selects on the webhook's status).
    """
    jobs = Job.objects.all() if where is None else Job.objects.filter(where)
    if job_ids:
        jobs = jobs.filter(pk__in=job_ids)
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if older_than is not None:
        jobs = jobs.filter(updated_at__lte=timezone.now() - older_than)
    if tenant:
        jobs = jobs.filter(tenant_id=tenant)
    # The longest-waiting first, so a --limit works through a backlog in order.
    jobs = jobs.order_by("updated_at", "pk")
    return jobs[:limit] if limit is not None else jobs


def job_log_fields(job_id: uuid.UUID | str) -> dict[str, str]:
    """What every log line about a job carries outside the request that created it: its id and
    that request's id (empty for a job created outside a request, or gone)."""
    request_id = Job.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    return {"job_id": str(job_id), "request_id": request_id or ""}
