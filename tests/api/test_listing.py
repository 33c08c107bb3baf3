"""GET /api/v1/job: the caller's own jobs, newest first, a page at a time."""

import base64

import requests
from django.db import connection

from jobs.models import Job
from jobs.queries import LISTING_INDEX
from tests.support.api import submit, wait_for_status


def _list(stack, owner, **params) -> requests.Response:
    return requests.get(f"{stack.api}/api/v1/job", params=params, headers=owner.headers, timeout=30)


def _pages(stack, owner, between=None, **params) -> list[list[str]]:
    """Every page's job ids, following `next` as a client would; `between()` runs after each."""
    pages = []
    response = _list(stack, owner, **params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([job["id"] for job in body["results"]])
        if between:
            between()
        if body["next"] is None:
            return pages
        assert body["next"].startswith(f"{stack.api}/api/v1/job?")
        response = requests.get(body["next"], headers=owner.headers, timeout=30)


def _stored_ids(owner) -> list[str]:
    jobs = Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub)
    return [str(pk) for pk in jobs.order_by("-created_at", "-id").values_list("pk", flat=True)]


def test_it_lists_only_the_callers_jobs_newest_first(stack, alice, bob, mallory):
    mine = [submit(stack, alice, f"job {i}".encode())["id"] for i in range(3)]
    submit(stack, bob)
    submit(stack, mallory)  # alice's sub in another tenant

    response = _list(stack, alice)

    assert response.status_code == 200
    body = response.json()
    assert [job["id"] for job in body["results"]] == mine[::-1] == _stored_ids(alice)
    assert body["next"] is None
    first = body["results"][0]
    assert first["links"]["status"] == f"{stack.api}/api/v1/job/{mine[-1]}/status"
    assert first["input_size"] == len(b"job 2")


def test_no_page_ever_shows_another_owners_job(stack, alice, bob, mallory):
    owners = (alice, bob, mallory)
    submitted = {owner: [] for owner in owners}
    for i in range(4):  # interleaved, so every page boundary falls among other owners' jobs
        for owner in owners:
            submitted[owner].append(submit(stack, owner, f"job {i}".encode())["id"])

    for owner in owners:
        pages = _pages(stack, owner, limit=3)

        assert [len(page) for page in pages] == [3, 1]
        listed = [job_id for page in pages for job_id in page]
        assert listed == submitted[owner][::-1] == _stored_ids(owner)


def test_paging_is_complete_and_stable_while_jobs_are_submitted(stack, alice):
    older = [submit(stack, alice, f"old {i}".encode())["id"] for i in range(6)]
    newer = []

    def submit_two_more():
        newer.extend(submit(stack, alice, b"new")["id"] for _ in range(2))

    pages = _pages(stack, alice, between=submit_two_more, limit=2)

    listed = [job_id for page in pages for job_id in page]
    # Every older job once, in order; none of those submitted meanwhile slipped in.
    assert listed == older[::-1]
    assert len(newer) == 2 * len(pages)
    # The jobs submitted meanwhile head a fresh listing.
    assert _pages(stack, alice, limit=100)[0] == _stored_ids(alice) == newer[::-1] + older[::-1]


def test_jobs_created_in_the_same_instant_are_ordered_by_id(stack, alice):
    ids = [submit(stack, alice, f"tie {i}".encode())["id"] for i in range(5)]
    # Three jobs in one millisecond, as concurrent submissions can be; set in the database
    # because no client can time that.
    instant = Job.objects.get(pk=ids[1]).created_at
    Job.objects.filter(pk__in=ids[1:4]).update(created_at=instant)

    for limit in (1, 2):
        pages = _pages(stack, alice, limit=limit)

        listed = [job_id for page in pages for job_id in page]
        assert listed == _stored_ids(alice)
        assert sorted(listed) == sorted(ids)
        tied = [job_id for job_id in listed if job_id in ids[1:4]]
        assert tied == sorted(ids[1:4], reverse=True)


def test_it_filters_by_status(stack, alice):
    done = submit(stack, alice, b"fine")["id"]
    failed = submit(stack, alice, b"#fail on purpose")["id"]
    wait_for_status(stack, alice, done, {"EXECUTION_COMPLETED"})
    wait_for_status(stack, alice, failed, {"EXECUTION_ERROR"})

    def listed(query: str) -> list[str]:
        response = requests.get(
            f"{stack.api}/api/v1/job?{query}", headers=alice.headers, timeout=30
        )
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["results"]]

    assert listed("status=EXECUTION_ERROR") == [failed]
    assert listed("status=EXECUTION_COMPLETED") == [done]
    assert listed("status=EXECUTION_COMPLETED,EXECUTION_ERROR") == [failed, done]
    assert listed("status=EXECUTION_COMPLETED&status=EXECUTION_ERROR") == [failed, done]
    assert listed("status=CREATED,STORED&status=SUBMITTED") == []
    # The filter is kept in the next link.
    pages = _pages(stack, alice, status="EXECUTION_ERROR,EXECUTION_COMPLETED", limit=1)
    assert pages == [[failed], [done]]


def test_it_filters_by_creation_time(stack, alice):
    ids = [submit(stack, alice, f"job {i}".encode())["id"] for i in range(3)]
    jobs = _list(stack, alice).json()["results"]  # newest first
    middle = jobs[1]["created_at"]
    assert jobs[1]["id"] == ids[1]

    def listed(**params) -> list[str]:
        response = _list(stack, alice, **params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["results"]]

    assert listed(created_after=middle) == [ids[2]]
    assert listed(created_before=middle) == [ids[0]]
    assert listed(created_after=middle, created_before=middle) == []
    assert listed(created_after=jobs[2]["created_at"], created_before=jobs[0]["created_at"]) == [
        ids[1]
    ]
    assert listed(created_after="2000-01-01") == ids[::-1]
    assert listed(created_before="2000-01-01T00:00:00+02:00") == []


def test_bad_parameters_are_400_with_stable_codes(stack, alice):
    submit(stack, alice)
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
        response = _list(stack, alice, **params)

        assert response.status_code == 400, (params, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code, params


def test_it_needs_a_token(stack):
    response = requests.get(f"{stack.api}/api/v1/job", timeout=30)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_page_query_walks_the_owner_index(stack):
    # The embedded server's explain describes its own engine (a scan in Python or SQLite), not
    # MongoDB's plan; what holds everywhere: the index exists with the listing's order, and the
    # page query names it (a hint of a missing index is an error, not a silent scan).
    indexes = {
        index["name"]: list(index["key"].items())
        for index in connection.get_collection("jobs_job").list_indexes()
    }

    assert indexes[LISTING_INDEX] == [("tenant_id", 1), ("sub", 1), ("created_at", -1), ("_id", -1)]
    assert "job_owner_created" not in indexes  # its prefix; replaced by migration 0006
