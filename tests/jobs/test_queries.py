"""The API's reads (jobs/queries.py): the listing's page query and the index it names, and a
job read with PyMongo against the same job read by the ORM.

The listing through the API (order, paging, filters) is tested in tests/jobs/api/test_listing.py.
"""

from datetime import UTC, datetime

from django.db import connection

from jobs.models import Job
from jobs.queries import LISTING_INDEX, job_of_owner, job_page


def test_the_page_query_walks_the_owner_index():
    # The embedded server's explain describes its own engine (a scan in Python or SQLite), not
    # MongoDB's plan; what holds everywhere: the index exists with the listing's order, and the
    # page query names it (a hint of a missing index is an error, not a silent scan).
    indexes = {
        index["name"]: list(index["key"].items())
        for index in connection.get_collection("jobs_job").list_indexes()
    }

    assert indexes[LISTING_INDEX] == [("tenant_id", 1), ("sub", 1), ("created_at", -1), ("_id", -1)]
    assert "job_owner_created" not in indexes  # its prefix; replaced by migration 0006


def test_a_page_is_the_owners_newest_jobs_and_says_whether_more_follow(alice, mallory):
    # Final jobs: never taken for jobs in flight by a test that waits for a quiet stack.
    done = {"status": "EXECUTION_COMPLETED"}
    made = [Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, **done) for _ in range(3)]
    Job.objects.create(tenant_id=mallory.tenant_id, sub=mallory.sub, **done)  # alice's sub
    newest_first = sorted(made, key=lambda job: (job.created_at, job.id), reverse=True)

    page, more = job_page(tenant_id=alice.tenant_id, sub=alice.sub, limit=2)
    rest, more_after_rest = job_page(
        tenant_id=alice.tenant_id,
        sub=alice.sub,
        limit=2,
        after=(page[-1].created_at, page[-1].id),
    )

    assert [job.id for job in page] == [job.id for job in newest_first[:2]] and more
    assert [job.id for job in rest] == [newest_first[2].id] and not more_after_rest


def test_a_job_read_with_pymongo_is_the_job_the_orm_reads(alice):
    """mongo.load (the API's reads) against the ORM, field by field, JSON fields included."""
    job = Job.objects.create(
        tenant_id=alice.tenant_id,
        sub=alice.sub,
        status="SUBMITTED_ERROR",
        content_type="text/plain",
        input_size=7,
        attempts=3,
        error={"service": "jobservice", "message": "boom", "status_code": 503, "nested": [1, "2"]},
        history=[
            {"at": "2026-01-05T10:00:00.123+00:00", "from": None, "to": "CREATED", "by": "x"},
            {"at": "2026-01-05T10:00:01.456+00:00", "from": "CREATED", "to": "STORED"},
        ],
        next_attempt_at=datetime(2026, 1, 5, 10, 0, 3, 456000, tzinfo=UTC),
    )

    as_read = job_of_owner(tenant_id=alice.tenant_id, sub=alice.sub, job_id=job.id)
    from_orm = Job.objects.get(pk=job.pk)

    for field in Job._meta.concrete_fields:
        assert getattr(as_read, field.attname) == getattr(from_orm, field.attname), field.name
        assert type(getattr(as_read, field.attname)) is type(getattr(from_orm, field.attname))
    assert as_read._state.adding is False and as_read._state.db == from_orm._state.db
