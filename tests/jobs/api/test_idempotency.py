"""POST /api/v1/job with an Idempotency-Key: a repeat gets the first answer, never a second job."""

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from jobs.api import idempotency
from jobs.models import IdempotencyKey, Job
from tests.support.api import Owner
from tests.support.inprocess import Api, run_tasks
from tests.support.jobs_api import assert_problem, in_threads, staging_tmp_files

SENT_TO_JOBSERVICE = {"SUBMITTED", "EXECUTION_COMPLETED", "EXECUTION_ERROR"}


def post(
    api: Api,
    owner: Owner,
    data: bytes = b"some input",
    *,
    key: str | None,
    content_type: str = "text/plain",
):
    headers = {} if key is None else {"Idempotency-Key": key}
    return api.submit(owner, data, content_type=content_type, headers=headers)


def jobs_of(owner: Owner) -> list[Job]:
    return list(Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub))


def key_record(owner: Owner, key: str) -> IdempotencyKey:
    return IdempotencyKey.objects.get(tenant_id=owner.tenant_id, sub=owner.sub, key=key)


def sent_to_jobservice(job_id: str) -> Job:
    """Run the worker's tasks: the job has gone to JobService."""
    run_tasks()
    job = Job.objects.get(pk=job_id)
    assert job.status in SENT_TO_JOBSERVICE, job.status
    return job


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


def test_a_repeat_gets_the_same_answer_and_no_second_job(api, services, alice):
    first = post(api, alice, key="k1")
    second = post(api, alice, key="k1")

    assert first.status_code == second.status_code == 202, second.text
    assert second.content == first.content
    assert second["Location"] == first["Location"] == first.json()["links"]["status"]
    job_id = first.json()["id"]
    assert [str(job.id) for job in jobs_of(alice)] == [job_id]
    record = key_record(alice, "k1")
    assert str(record.job_id) == job_id and record.response_status == 202
    assert staging_tmp_files() == []
    # JobService got the one job, once.
    sent_to_jobservice(job_id)
    assert services.stats("job")["by_id"][job_id]["PUT"] == 1


def test_a_replay_is_the_first_answer_even_after_the_job_moved_on(api, alice):
    first = post(api, alice, key="k1")
    sent_to_jobservice(first.json()["id"])

    again = post(api, alice, key="k1")

    assert again.status_code == 202
    assert again.content == first.content
    assert again.json()["status"] == "CREATED"
    assert len(jobs_of(alice)) == 1


def test_a_repeated_multipart_upload_is_the_same_request(api, alice):
    # Each multipart body has its own boundary; the input and its content type are the same.
    def send():
        upload = SimpleUploadedFile("data.csv", b"a,b\n1,2\n", content_type="text/csv")
        return api.post(
            "/api/v1/job",
            alice,
            data={"input": upload},
            format="multipart",
            headers={"Idempotency-Key": "upload-1"},
        )

    first, second = send(), send()

    assert first.status_code == second.status_code == 202, second.text
    assert second.content == first.content
    assert len(jobs_of(alice)) == 1
    assert staging_tmp_files() == []


def test_the_same_key_with_another_body_is_422(api, alice):
    first = post(api, alice, b"some input", key="k1")

    other = post(api, alice, b"other input", key="k1")

    assert first.status_code == 202
    assert_problem(other, 422, "idempotency_key_reused")
    assert [str(job.id) for job in jobs_of(alice)] == [first.json()["id"]]
    assert staging_tmp_files() == []
    # The key still answers for its own request.
    assert post(api, alice, b"some input", key="k1").content == first.content


def test_the_same_key_with_another_content_type_is_422(api, alice):
    first = post(api, alice, b"a,b\n", key="k1", content_type="text/plain")

    other = post(api, alice, b"a,b\n", key="k1", content_type="text/csv")

    assert first.status_code == 202
    assert_problem(other, 422, "idempotency_key_reused")
    assert len(jobs_of(alice)) == 1
    assert staging_tmp_files() == []


@pytest.mark.parametrize("other", ["bob", "mallory"])
def test_a_key_belongs_to_its_owner(api, alice, other, request):
    other_owner = request.getfixturevalue(other)
    alices = post(api, alice, key="k1")

    theirs = post(api, other_owner, key="k1")

    assert alices.status_code == theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != alices.json()["id"]
    assert [str(job.id) for job in jobs_of(other_owner)] == [theirs.json()["id"]]
    assert [str(job.id) for job in jobs_of(alice)] == [alices.json()["id"]]


def test_without_a_key_every_post_is_a_new_job(api, alice):
    first = post(api, alice, key=None)
    second = post(api, alice, key=None)

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert len(jobs_of(alice)) == 2
    assert not IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()


def test_an_expired_key_makes_a_new_job(api, alice):
    first = post(api, alice, key="k1")
    # Expired, but not yet removed: MongoDB's TTL monitor runs only about once a minute.
    IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub, key="k1").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    second = post(api, alice, key="k1")

    assert first.status_code == second.status_code == 202, second.text
    assert second.json()["id"] != first.json()["id"]
    assert len(jobs_of(alice)) == 2
    assert str(key_record(alice, "k1").job_id) == second.json()["id"]


def test_a_key_is_kept_for_its_ttl_and_removed_by_a_ttl_index(api, alice):
    post(api, alice, key="k1")

    record = key_record(alice, "k1")
    ttl = timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    assert record.expires_at - record.created_at == ttl
    indexes = connection.get_collection(IdempotencyKey._meta.db_table).index_information()
    ttl_indexes = [index for index in indexes.values() if "expireAfterSeconds" in index]
    assert len(ttl_indexes) == 1
    assert ttl_indexes[0]["key"] == [("expires_at", 1)]
    assert ttl_indexes[0]["expireAfterSeconds"] == 0


def test_a_repeat_while_the_first_is_in_progress_is_409(api, alice, in_progress_key):
    response = post(api, alice, b"some input", key=in_progress_key)

    assert_problem(response, 409, "idempotency_request_in_progress")
    assert jobs_of(alice) == []
    assert staging_tmp_files() == []


def test_another_body_while_the_first_is_in_progress_is_422(api, alice, in_progress_key):
    response = post(api, alice, b"other input", key=in_progress_key)

    assert_problem(response, 422, "idempotency_key_reused")
    assert jobs_of(alice) == []


def test_a_claim_left_unanswered_past_its_lease_is_taken_over(api, alice, in_progress_key):
    # The request that claimed the key died before answering; its lease has run out.
    IdempotencyKey.objects.filter(key=in_progress_key, sub=alice.sub).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = post(api, alice, b"some input", key=in_progress_key)

    assert response.status_code == 202, response.text
    assert [str(job.id) for job in jobs_of(alice)] == [response.json()["id"]]
    assert key_record(alice, in_progress_key).response_status == 202


def test_concurrent_repeats_make_exactly_one_job(services, alice, settings):
    # Eight requests at once, each on its own client and database connection: in one process,
    # so the per-process upload caps (jobs/api/uploads.py) are raised to let all eight in.
    settings.UPLOADS_PER_PROCESS = settings.UPLOADS_PER_OWNER = 8
    answers = in_threads(8, lambda: post(Api(), alice, b"some input", key="race"))

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
    assert staging_tmp_files() == []
    sent_to_jobservice(job_id)
    assert services.stats("job")["by_id"][job_id]["PUT"] == 1


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
def test_an_invalid_key_is_400_before_the_body_is_staged(api, alice, key):
    response = post(api, alice, key=key)

    assert_problem(response, 400, "invalid_idempotency_key")
    assert jobs_of(alice) == []
    assert not IdempotencyKey.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).exists()
    assert staging_tmp_files() == []


def test_a_key_of_255_characters_is_accepted(api, alice):
    key = "k" * 254 + "~"

    response = post(api, alice, key=key)

    assert response.status_code == 202, response.text
    assert key_record(alice, key).response_status == 202
