"""The listing's page query (jobs/queries.py job_page) and the index it names.

The listing through the API (order, paging, filters) is tested in tests/jobs/api/test_listing.py.
"""

from django.db import connection

from jobs.models import Job
from jobs.queries import LISTING_INDEX, job_page


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
