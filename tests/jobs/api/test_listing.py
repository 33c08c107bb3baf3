"""GET /api/v1/job: the caller's own jobs, newest first, a page at a time."""

import base64
import uuid
from datetime import UTC, datetime

import pytest
from django.http import QueryDict

from jobs.api import errors, listing
from jobs.models import Job
from tests.support.inprocess import submit, wait_for_status

# The host of DRF's test client: the links in the answers are absolute.
BASE = "http://testserver"


def _list(api, owner, **params):
    return api.get("/api/v1/job", owner, data=params)


def _pages(api, owner, between=None, **params) -> list[list[str]]:
    """Every page's job ids, following `next` as a client would; `between()` runs after each."""
    pages = []
    response = _list(api, owner, **params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([job["id"] for job in body["results"]])
        if between:
            between()
        if body["next"] is None:
            return pages
        assert body["next"].startswith(f"{BASE}/api/v1/job?")
        response = api.get(body["next"], owner)


def _stored_ids(owner) -> list[str]:
    jobs = Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub)
    return [str(pk) for pk in jobs.order_by("-created_at", "-id").values_list("pk", flat=True)]


def test_it_lists_only_the_callers_jobs_newest_first(api, alice, bob, mallory):
    mine = [submit(api, alice, f"job {i}".encode())["id"] for i in range(3)]
    submit(api, bob)
    submit(api, mallory)  # alice's sub in another tenant

    response = _list(api, alice)

    assert response.status_code == 200
    body = response.json()
    assert [job["id"] for job in body["results"]] == mine[::-1] == _stored_ids(alice)
    assert body["next"] is None
    first = body["results"][0]
    assert first["links"]["status"] == f"{BASE}/api/v1/job/{mine[-1]}/status"
    assert first["input_size"] == len(b"job 2")


def test_no_page_ever_shows_another_owners_job(api, alice, bob, mallory):
    owners = (alice, bob, mallory)
    submitted = {owner: [] for owner in owners}
    for i in range(4):  # interleaved, so every page boundary falls among other owners' jobs
        for owner in owners:
            submitted[owner].append(submit(api, owner, f"job {i}".encode())["id"])

    for owner in owners:
        pages = _pages(api, owner, limit=3)

        assert [len(page) for page in pages] == [3, 1]
        listed = [job_id for page in pages for job_id in page]
        assert listed == submitted[owner][::-1] == _stored_ids(owner)


def test_paging_is_complete_and_stable_while_jobs_are_submitted(api, alice):
    older = [submit(api, alice, f"old {i}".encode())["id"] for i in range(6)]
    newer = []

    def submit_two_more():
        newer.extend(submit(api, alice, b"new")["id"] for _ in range(2))

    pages = _pages(api, alice, between=submit_two_more, limit=2)

    listed = [job_id for page in pages for job_id in page]
    # Every older job once, in order; none of those submitted meanwhile slipped in.
    assert listed == older[::-1]
    assert len(newer) == 2 * len(pages)
    # The jobs submitted meanwhile head a fresh listing.
    assert _pages(api, alice, limit=100)[0] == _stored_ids(alice) == newer[::-1] + older[::-1]


def test_jobs_created_in_the_same_instant_are_ordered_by_id(api, alice):
    ids = [submit(api, alice, f"tie {i}".encode())["id"] for i in range(5)]
    # Three jobs in one millisecond, as concurrent submissions can be; set in the database
    # because no client can time that.
    instant = Job.objects.get(pk=ids[1]).created_at
    Job.objects.filter(pk__in=ids[1:4]).update(created_at=instant)

    for limit in (1, 2):
        pages = _pages(api, alice, limit=limit)

        listed = [job_id for page in pages for job_id in page]
        assert listed == _stored_ids(alice)
        assert sorted(listed) == sorted(ids)
        tied = [job_id for job_id in listed if job_id in ids[1:4]]
        assert tied == sorted(ids[1:4], reverse=True)


def test_it_filters_by_status(api, alice):
    done = submit(api, alice, b"fine")["id"]
    failed = submit(api, alice, b"#fail on purpose")["id"]
    wait_for_status(api, alice, done, {"EXECUTION_COMPLETED"})
    wait_for_status(api, alice, failed, {"EXECUTION_ERROR"})

    def listed(query: str) -> list[str]:
        response = api.get(f"/api/v1/job?{query}", alice)
        assert response.status_code == 200, response.content
        return [job["id"] for job in response.json()["results"]]

    assert listed("status=EXECUTION_ERROR") == [failed]
    assert listed("status=EXECUTION_COMPLETED") == [done]
    assert listed("status=EXECUTION_COMPLETED,EXECUTION_ERROR") == [failed, done]
    assert listed("status=EXECUTION_COMPLETED&status=EXECUTION_ERROR") == [failed, done]
    assert listed("status=CREATED,STORED&status=SUBMITTED") == []
    # The filter is kept in the next link.
    pages = _pages(api, alice, status="EXECUTION_ERROR,EXECUTION_COMPLETED", limit=1)
    assert pages == [[failed], [done]]


def test_it_filters_by_creation_time(api, alice):
    ids = [submit(api, alice, f"job {i}".encode())["id"] for i in range(3)]
    jobs = _list(api, alice).json()["results"]  # newest first
    middle = jobs[1]["created_at"]
    assert jobs[1]["id"] == ids[1]

    def listed(**params) -> list[str]:
        response = _list(api, alice, **params)
        assert response.status_code == 200, response.content
        return [job["id"] for job in response.json()["results"]]

    assert listed(created_after=middle) == [ids[2]]
    assert listed(created_before=middle) == [ids[0]]
    assert listed(created_after=middle, created_before=middle) == []
    assert listed(created_after=jobs[2]["created_at"], created_before=jobs[0]["created_at"]) == [
        ids[1]
    ]
    assert listed(created_after="2000-01-01") == ids[::-1]
    assert listed(created_before="2000-01-01T00:00:00+02:00") == []


def test_bad_parameters_are_400_with_stable_codes(api, alice):
    submit(api, alice)
    not_a_position = base64.urlsafe_b64encode(b'{"t": "soon", "i": "x"}').decode()
    cases = [
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "101"}, "invalid_limit"),
        ({"limit": "-1"}, "invalid_limit"),
        ({"limit": "1.5"}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"cursor": "not a cursor"}, "invalid_cursor"),
        ({"cursor": not_a_position}, "invalid_cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"t": 1e400}').decode()}, "invalid_cursor"),
        ({"status": "DONE"}, "invalid_status_filter"),
        ({"status": "CREATED,done"}, "invalid_status_filter"),
        ({"created_after": "yesterday"}, "invalid_date_filter"),
        ({"created_before": "2026-13-01T00:00:00Z"}, "invalid_date_filter"),
        ({"created_before": "0001-01-01T00:00:00+05:00"}, "invalid_date_filter"),
    ]

    for params, code in cases:
        response = _list(api, alice, **params)

        assert response.status_code == 400, (params, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code, params


def test_it_needs_a_token(api):
    response = api.get("/api/v1/job")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# The query string itself, read without a request.


def test_without_parameters_it_is_the_first_page_of_the_default_size(settings):
    query = listing.parse_list_query(QueryDict(""))

    assert query == listing.ListQuery(limit=settings.LIST_DEFAULT_LIMIT)


def test_the_limit_follows_the_settings(settings):
    settings.LIST_MAX_LIMIT = 5

    assert listing.parse_list_query(QueryDict("limit=5")).limit == 5
    with pytest.raises(errors.InvalidLimit):
        listing.parse_list_query(QueryDict("limit=6"))


def test_a_cursor_comes_back_as_the_position_it_was_made_from():
    job = Job(id=uuid.uuid4(), created_at=datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC))

    cursor = listing.encode_cursor(job)

    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # safe in a URL
    assert listing.decode_cursor(cursor) == (job.created_at, job.id)


def test_statuses_are_merged_without_repeats():
    query = listing.parse_list_query(QueryDict("status=CREATED,STORED&status=CREATED&status="))

    assert query.statuses == ("CREATED", "STORED")


def test_an_instant_without_offset_is_utc():
    query = listing.parse_list_query(QueryDict("created_after=2026-01-05T10:00:00"))

    assert query.created_after == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
