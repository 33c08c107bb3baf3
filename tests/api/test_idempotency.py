"""POST /api/v1/job with an Idempotency-Key: a repeat gets the first answer, never a second job."""

import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone

from jobs.api import idempotency
from jobs.models import IdempotencyKey, Job
from tests.support.api import Owner, wait_for_stored_status

SENT_TO_JOBSERVICE = {"SUBMITTED", "EXECUTION_COMPLETED", "EXECUTION_ERROR"}


def post(
    stack, owner: Owner, data: bytes = b"some input", *, key: str | None, **headers
) -> requests.Response:
    headers = {**owner.headers, "Content-Type": "text/plain", **headers}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(f"{stack.api}/api/v1/job", data=data, headers=headers, timeout=30)


def jobs_of(owner: Owner) -> list[Job]:
    return list(Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub))


def key_record(owner: Owner, key: str) -> IdempotencyKey:
    return IdempotencyKey.objects.get(tenant_id=owner.tenant_id, sub=owner.sub, key=key)


def _staging_tmp_files() -> list[Path]:
    return list((Path(settings.STAGING_DIR) / "tmp").iterdir())


def assert_problem(response: requests.Response, status_code: int, code: str) -> None:
    assert response.status_code == status_code, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.fixture
def in_progress_key(alice) -> str:
    """A key alice's earlier request claimed for b"some input" and has not answered yet."""
    key = "still-working"
    IdempotencyKey.objects.create(
        tenant_id=alice.tenant_id,
        sub=alice.sub,
        key=key,
        request_hash=idempotency.fingerprint(
            content_type="text/plain", body_sha256=hashlib.sha256(b"some input").hexdigest()
        ),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    return key


def test_a_repeat_gets_the_same_answer_and_no_second_job(stack, alice):
    first = post(stack, alice, key="k1")
    second = post(stack, alice, key="k1")

    assert first.status_code == second.status_code == 202, second.text
    assert second.content == first.content
    assert (
        second.headers["Location"] == first.headers["Location"] == first.json()["links"]["status"]
    )
    job_id = first.json()["id"]
    assert [str(job.id) for job in jobs_of(alice)] == [job_id]
    record = key_record(alice, "k1")
    assert str(record.job_id) == job_id and record.response_status == 202
    assert _staging_tmp_files() == []
    # JobService got the one job, once.
    wait_for_stored_status(job_id, SENT_TO_JOBSERVICE)
    assert stack.stats("job")["by_id"][job_id]["PUT"] == 1


def test_a_replay_is_the_first_answer_even_after_the_job_moved_on(stack, alice):
    first = post(stack, alice, key="k1")
    wait_for_stored_status(first.json()["id"], SENT_TO_JOBSERVICE)

    again = post(stack, alice, key="k1")

    assert again.status_code == 202
    assert again.content == first.content
    assert again.json()["status"] == "CREATED"
    assert len(jobs_of(alice)) == 1


def test_a_repeated_multipart_upload_is_the_same_request(stack, alice):
    # Each multipart body has its own boundary; the input and its content type are the same.
    def send() -> requests.Response:
        return requests.post(
            f"{stack.api}/api/v1/job",
            files={"input": ("data.csv", b"a,b\n1,2\n", "text/csv")},
            headers={**alice.headers, "Idempotency-Key": "upload-1"},
            timeout=30,
        )

    first, second = send(), send()

    assert first.status_code == second.status_code == 202, second.text
    assert second.content == first.content
    assert len(jobs_of(alice)) == 1
    assert _staging_tmp_files() == []


def test_the_same_key_with_another_body_is_422(stack, alice):
    first = post(stack, alice, b"some input", key="k1")

    other = post(stack, alice, b"other input", key="k1")

    assert first.status_code == 202
    assert_problem(other, 422, "idempotency_key_reused")
    assert [str(job.id) for job in jobs_of(alice)] == [first.json()["id"]]
    assert _staging_tmp_files() == []
    # The key still answers for its own request.
    assert post(stack, alice, b"some input", key="k1").content == first.content


def test_the_same_key_with_another_content_type_is_422(stack, alice):
    first = post(stack, alice, b"a,b\n", key="k1", **{"Content-Type": "text/plain"})

    other = post(stack, alice, b"a,b\n", key="k1", **{"Content-Type": "text/csv"})

    assert first.status_code == 202
    assert_problem(other, 422, "idempotency_key_reused")
    assert len(jobs_of(alice)) == 1
    assert _staging_tmp_files() == []


@pytest.mark.parametrize("other", ["bob", "mallory"])
def test_a_key_belongs_to_its_owner(stack, alice, other, request):
    other_owner = request.getfixturevalue(other)
    alices = post(stack, alice, key="k1")

    theirs = post(stack, other_owner, key="k1")

    assert alices.status_code == theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != alices.json()["id"]
    assert [str(job.id) for job in jobs_of(other_owner)] == [theirs.json()["id"]]
    assert [str(job.id) for job in jobs_of(alice)] == [alices.json()["id"]]


def test_without_a_key_every_post_is_a_new_job(stack, alice):
    first = post(stack, alice, key=None)
    second = post(stack, alice, key=None)

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert len(jobs_of(alice)) == 2
    assert not IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_an_expired_key_makes_a_new_job(stack, alice):
    first = post(stack, alice, key="k1")
    # Expired, but not yet removed: MongoDB's TTL monitor runs only about once a minute.
    IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub, key="k1").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    second = post(stack, alice, key="k1")

    assert first.status_code == second.status_code == 202, second.text
    assert second.json()["id"] != first.json()["id"]
    assert len(jobs_of(alice)) == 2
    assert str(key_record(alice, "k1").job_id) == second.json()["id"]


def test_a_key_is_kept_for_its_ttl_and_removed_by_a_ttl_index(stack, alice):
    post(stack, alice, key="k1")

    record = key_record(alice, "k1")
    ttl = timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    assert record.expires_at - record.created_at == ttl
    indexes = connection.get_collection(IdempotencyKey._meta.db_table).index_information()
    ttl_indexes = [index for index in indexes.values() if "expireAfterSeconds" in index]
    assert len(ttl_indexes) == 1
    assert ttl_indexes[0]["key"] == [("expires_at", 1)]
    assert ttl_indexes[0]["expireAfterSeconds"] == 0


def test_a_repeat_while_the_first_is_in_progress_is_409(stack, alice, in_progress_key):
    response = post(stack, alice, b"some input", key=in_progress_key)

    assert_problem(response, 409, "idempotency_request_in_progress")
    assert jobs_of(alice) == []
    assert _staging_tmp_files() == []


def test_another_body_while_the_first_is_in_progress_is_422(stack, alice, in_progress_key):
    response = post(stack, alice, b"other input", key=in_progress_key)

    assert_problem(response, 422, "idempotency_key_reused")
    assert jobs_of(alice) == []


def test_a_claim_left_unanswered_past_its_lease_is_taken_over(stack, alice, in_progress_key):
    # The request that claimed the key died before answering; its lease has run out.
    IdempotencyKey.objects.filter(key=in_progress_key, sub=alice.sub).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = post(stack, alice, b"some input", key=in_progress_key)

    assert response.status_code == 202, response.text
    assert [str(job.id) for job in jobs_of(alice)] == [response.json()["id"]]
    assert key_record(alice, in_progress_key).response_status == 202


def test_concurrent_repeats_make_exactly_one_job(stack, alice):
    barrier = threading.Barrier(8)
    headers = {**alice.headers, "Content-Type": "text/plain", "Idempotency-Key": "race"}
    answers: list[requests.Response] = []

    def send():
        barrier.wait()
        answers.append(
            requests.post(
                f"{stack.api}/api/v1/job", data=b"some input", headers=headers, timeout=30
            )
        )

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    jobs = jobs_of(alice)
    assert len(jobs) == 1
    job_id = str(jobs[0].id)
    assert len(answers) == 8
    for answer in answers:
        if answer.status_code == 202:
            assert answer.json()["id"] == job_id
        else:
            assert_problem(answer, 409, "idempotency_request_in_progress")
    assert any(answer.status_code == 202 for answer in answers)
    assert _staging_tmp_files() == []
    wait_for_stored_status(job_id, SENT_TO_JOBSERVICE)
    assert stack.stats("job")["by_id"][job_id]["PUT"] == 1


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="too-long"),
        pytest.param("two words", id="space"),
        pytest.param("tab\there", id="control-char"),
        pytest.param("cl\xe9", id="non-ascii"),
    ],
)
def test_an_invalid_key_is_400_before_the_body_is_staged(stack, alice, key):
    response = post(stack, alice, key=key)

    assert_problem(response, 400, "invalid_idempotency_key")
    assert jobs_of(alice) == []
    assert not IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert _staging_tmp_files() == []


def test_a_key_of_255_characters_is_accepted(stack, alice):
    key = "k" * 254 + "~"

    response = post(stack, alice, key=key)

    assert response.status_code == 202, response.text
    assert key_record(alice, key).response_status == 202
