"""The reference JobService, with a real BlobService behind it, over real HTTP."""

from __future__ import annotations

import hashlib
import time

import pytest
import requests

from tests.refservices.helpers import Service, get_blob, put_blob, wait_for_job

MIB = 1024 * 1024
LOWER = bytes(range(ord("a"), ord("z") + 1))
UPPER = LOWER.upper()


def job_url(service: Service, job_id: str) -> str:
    return f"{service.url}/jobs/{job_id}"


def create_job(service: Service, job_id: str, blob_id: str) -> requests.Response:
    return requests.put(job_url(service, job_id), json={"blob_id": blob_id}, timeout=10)


def executions(service: Service, job_id: str) -> int:
    return service.stats()["executions"].get(job_id, 0)


# --------------------------------------------------------------------------- execution


def test_a_job_uppercases_exactly_a_to_z_and_keeps_the_content_type(
    jobservice, blobservice, job_id
):
    data = b"Hello, world! 0123456789 " + LOWER + b" \xc3\xa9\xe4\xff\x00 {`@[ " + bytes(range(256))
    put_blob(blobservice, "input", data, "text/x-custom; charset=latin-1")

    created = create_job(jobservice, job_id, "input")
    finished = wait_for_job(jobservice, job_id)

    assert created.status_code == 201
    assert created.json()["status"] == "QUEUED"
    assert finished["status"] == "SUCCEEDED"
    assert finished["error"] is None
    output = get_blob(blobservice, "input")
    assert output.content == data.translate(bytes.maketrans(LOWER, UPPER))
    assert output.headers["Content-Type"] == "text/x-custom; charset=latin-1"
    assert executions(jobservice, job_id) == 1


def test_the_job_document_has_the_contracted_shape(jobservice, blobservice, job_id):
    put_blob(blobservice, "shape", b"abc")

    document = create_job(jobservice, job_id, "shape").json()
    finished = wait_for_job(jobservice, job_id)

    assert set(document) == {"id", "blob_id", "status", "error", "created_at", "updated_at"}
    assert (document["id"], document["blob_id"]) == (job_id, "shape")
    assert document["created_at"].endswith("Z")
    assert finished["created_at"] == document["created_at"]
    assert finished["updated_at"] > document["updated_at"]


def test_an_input_starting_with_fail_ends_failed_and_leaves_the_blob_untouched(
    jobservice, blobservice, job_id
):
    put_blob(blobservice, "doomed", b"#fail then lowercase text")

    create_job(jobservice, job_id, "doomed")
    finished = wait_for_job(jobservice, job_id)

    assert finished["status"] == "FAILED"
    assert finished["error"] == "input starts with #fail"
    assert get_blob(blobservice, "doomed").content == b"#fail then lowercase text"
    assert blobservice.stats()["by_id"]["doomed"]["PUT"] == 1  # the test's own upload only


def test_an_empty_input_succeeds_and_stays_empty(jobservice, blobservice, job_id):
    put_blob(blobservice, "nothing", b"")

    create_job(jobservice, job_id, "nothing")

    assert wait_for_job(jobservice, job_id)["status"] == "SUCCEEDED"
    assert get_blob(blobservice, "nothing").content == b""


def test_a_blobservice_error_while_reading_fails_the_job_readably(jobservice, blobservice, job_id):
    put_blob(blobservice, "flaky", b"data")
    blobservice.faults(fail_next=1, status=500, methods=["GET"])

    create_job(jobservice, job_id, "flaky")
    finished = wait_for_job(jobservice, job_id)

    assert finished["status"] == "FAILED"
    assert "500" in finished["error"] and "GET /blobs/flaky" in finished["error"]


def test_a_blobservice_error_while_writing_fails_the_job_and_keeps_the_input(
    jobservice, blobservice, job_id
):
    put_blob(blobservice, "flaky-write", b"data")
    blobservice.faults(fail_next=1, status=503, methods=["PUT"])

    create_job(jobservice, job_id, "flaky-write")
    finished = wait_for_job(jobservice, job_id)

    assert finished["status"] == "FAILED"
    assert "503" in finished["error"] and "PUT /blobs/flaky-write" in finished["error"]
    assert get_blob(blobservice, "flaky-write").content == b"data"


def test_a_large_input_is_streamed_through_the_jobservice(launch_jobservice, blobservice, job_id):
    jobservice = launch_jobservice()  # a fresh process: its peak RSS is this test's alone
    block = bytes(range(256)) * 4096  # 1 MiB with every byte value
    put_blob(blobservice, "big", block * 30)
    baseline = jobservice.peak_rss_kib()

    create_job(jobservice, job_id, "big")
    finished = wait_for_job(jobservice, job_id, timeout=30)

    assert finished["status"] == "SUCCEEDED"
    expected = hashlib.sha256(block.translate(bytes.maketrans(LOWER, UPPER)) * 30).hexdigest()
    assert hashlib.sha256(get_blob(blobservice, "big").content).hexdigest() == expected
    growth_mib = (jobservice.peak_rss_kib() - baseline) / 1024
    assert growth_mib < 20, f"peak RSS grew by {growth_mib:.1f} MiB"


# --------------------------------------------------------------------------- creating


def test_putting_the_same_job_twice_answers_200_and_executes_once(jobservice, blobservice, job_id):
    put_blob(blobservice, "twice", b"abc")

    first = create_job(jobservice, job_id, "twice")
    second = create_job(jobservice, job_id, "twice")
    wait_for_job(jobservice, job_id)
    third = create_job(jobservice, job_id, "twice")
    time.sleep(0.2)  # room for a second execution, which must not happen

    assert (first.status_code, second.status_code, third.status_code) == (201, 200, 200)
    same = ("id", "blob_id", "created_at")
    assert [second.json()[k] for k in same] == [first.json()[k] for k in same]
    assert third.json()["status"] == "SUCCEEDED"
    assert executions(jobservice, job_id) == 1
    assert get_blob(blobservice, "twice").content == b"ABC"


def test_the_same_job_id_with_another_blob_is_a_409_conflict(jobservice, blobservice, job_id):
    put_blob(blobservice, "one", b"1")
    put_blob(blobservice, "two", b"2")
    create_job(jobservice, job_id, "one")

    response = create_job(jobservice, job_id, "two")

    assert response.status_code == 409
    assert response.json()["code"] == "job_conflict"
    assert wait_for_job(jobservice, job_id)["blob_id"] == "one"


def test_a_job_for_a_missing_blob_is_refused_with_422(jobservice, job_id):
    response = create_job(jobservice, job_id, "no-such-blob")

    assert response.status_code == 422
    assert response.json()["code"] == "blob_not_found"
    assert requests.get(job_url(jobservice, job_id), timeout=5).status_code == 404


def test_an_unreachable_blobservice_is_a_503(launch, job_id):
    from tests.support.processes import free_port

    nobody = f"http://127.0.0.1:{free_port()}"
    jobservice = launch("jobservice", "--blobservice-url", nobody, "--delay", "0")

    response = create_job(jobservice, job_id, "whatever")

    assert response.status_code == 503
    assert response.json()["code"] == "blobservice_unavailable"


def test_a_failing_blobservice_is_a_503_on_create(jobservice, blobservice, job_id):
    put_blob(blobservice, "there", b"x")
    blobservice.faults(fail_next=1, status=500, methods=["HEAD"])

    response = create_job(jobservice, job_id, "there")

    assert response.status_code == 503
    assert response.json()["code"] == "blobservice_unavailable"


@pytest.mark.parametrize(
    "body", [b"not json", b"{}", b'{"blob_id": 42}', b'["x"]', b'{"blob_id": "bad id"}', b""]
)
def test_a_malformed_create_request_is_a_400(jobservice, job_id, body):
    response = requests.put(
        job_url(jobservice, job_id),
        data=body,
        timeout=5,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_an_invalid_job_id_is_a_400_and_an_unknown_job_a_404(jobservice):
    invalid = requests.get(f"{jobservice.url}/jobs/no%20spaces", timeout=5)
    unknown = requests.get(job_url(jobservice, "never-created"), timeout=5)

    assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid_job_id")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "job_not_found")


# --------------------------------------------------------------------------- cancelling


def test_cancelling_a_queued_job_stops_it_before_it_runs(jobservice, blobservice, job_id):
    put_blob(blobservice, "wait", b"abc")
    jobservice.faults(execution_delay=30)
    create_job(jobservice, job_id, "wait")

    response = requests.delete(job_url(jobservice, job_id), timeout=5)
    jobservice.clear_faults()  # were the job still queued, it would run now
    time.sleep(0.3)

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert wait_for_job(jobservice, job_id)["status"] == "CANCELLED"
    assert executions(jobservice, job_id) == 0
    assert get_blob(blobservice, "wait").content == b"abc"


def test_cancelling_a_running_job_discards_its_output(jobservice, blobservice, job_id):
    put_blob(blobservice, "slow-read", b"abc")
    blobservice.faults(delay=1.0, methods=["GET"])  # the job's read of its input hangs
    create_job(jobservice, job_id, "slow-read")
    wait_for_job(jobservice, job_id, {"RUNNING"})

    response = requests.delete(job_url(jobservice, job_id), timeout=5)
    time.sleep(1.3)  # the read completes; the job must notice the cancel and write nothing

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert wait_for_job(jobservice, job_id)["status"] == "CANCELLED"
    blobservice.clear_faults()
    assert get_blob(blobservice, "slow-read").content == b"abc"
    assert blobservice.stats()["by_id"]["slow-read"]["PUT"] == 1  # the test's own upload only


def test_cancelling_a_finished_job_is_a_409_with_the_job(jobservice, blobservice, job_id):
    put_blob(blobservice, "done", b"abc")
    create_job(jobservice, job_id, "done")
    wait_for_job(jobservice, job_id)

    response = requests.delete(job_url(jobservice, job_id), timeout=5)

    assert response.status_code == 409
    assert response.json()["code"] == "job_final"
    assert response.json()["job"]["status"] == "SUCCEEDED"


def test_cancelling_an_unknown_job_is_a_404(jobservice):
    response = requests.delete(job_url(jobservice, "never-created"), timeout=5)

    assert (response.status_code, response.json()["code"]) == (404, "job_not_found")


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_restarted_jobservice_finishes_the_jobs_it_accepted(
    launch_jobservice, blobservice, tmp_path, job_id, how
):
    data_dir = tmp_path / "jobs-data"
    put_blob(blobservice, "resume", b"resume me")
    first = launch_jobservice(delay=60, data_dir=data_dir)
    assert create_job(first, job_id, "resume").status_code == 201
    getattr(first.process, how)()

    second = launch_jobservice(delay=0, data_dir=data_dir)
    finished = wait_for_job(second, job_id)

    assert finished["status"] == "SUCCEEDED"
    assert get_blob(blobservice, "resume").content == b"RESUME ME"
    assert executions(second, job_id) == 1
    assert create_job(second, job_id, "resume").status_code == 200


def test_finished_jobs_are_remembered_across_restarts(
    launch_jobservice, blobservice, tmp_path, job_id
):
    data_dir = tmp_path / "jobs-data"
    put_blob(blobservice, "remember", b"x")
    first = launch_jobservice(data_dir=data_dir)
    create_job(first, job_id, "remember")
    before = wait_for_job(first, job_id)
    first.process.stop()

    second = launch_jobservice(data_dir=data_dir)
    time.sleep(0.2)

    assert requests.get(job_url(second, job_id), timeout=5).json() == before
    assert executions(second, job_id) == 0


# --------------------------------------------------------------------------- control plane


def test_the_execution_delay_keeps_jobs_queued_and_can_be_changed_live(
    jobservice, blobservice, job_id
):
    put_blob(blobservice, "delayed", b"abc")
    shown = jobservice.faults(execution_delay=30)
    create_job(jobservice, job_id, "delayed")
    time.sleep(0.3)
    still_queued = requests.get(job_url(jobservice, job_id), timeout=5).json()["status"]

    jobservice.faults(execution_delay=0)

    assert shown["execution_delay"] == 30
    assert still_queued == "QUEUED"
    assert wait_for_job(jobservice, job_id)["status"] == "SUCCEEDED"


def test_clearing_faults_restores_the_command_line_delay(jobservice):
    jobservice.faults(execution_delay=5)
    jobservice.clear_faults()

    faults = requests.get(f"{jobservice.url}/_control/faults", timeout=5).json()
    assert faults["execution_delay"] == 0


def test_an_injected_fault_on_create_creates_nothing(jobservice, blobservice, job_id):
    put_blob(blobservice, "guarded", b"abc")
    jobservice.faults(fail_next=1, status=429, retry_after=3, methods=["PUT"])

    faulted = create_job(jobservice, job_id, "guarded")
    missing = requests.get(job_url(jobservice, job_id), timeout=5)
    created = create_job(jobservice, job_id, "guarded")

    assert (faulted.status_code, faulted.json()["code"]) == (429, "injected_fault")
    assert faulted.headers["Retry-After"] == "3"
    assert missing.status_code == 404
    assert created.status_code == 201


def test_stats_count_requests_and_executions(jobservice, blobservice, job_id):
    put_blob(blobservice, "counted", b"abc")
    create_job(jobservice, job_id, "counted")
    create_job(jobservice, job_id, "counted")
    wait_for_job(jobservice, job_id)
    requests.delete(job_url(jobservice, job_id), timeout=5)

    stats = jobservice.stats()

    assert stats["requests"]["PUT /jobs"] == 2
    assert stats["requests"]["DELETE /jobs"] == 1
    assert stats["by_id"][job_id]["PUT"] == 2
    assert stats["by_id"][job_id]["GET"] >= 1
    assert stats["executions"] == {job_id: 1}
    assert stats["faults_injected"] == 0


def test_many_jobs_run_concurrently_and_all_succeed(jobservice, blobservice, job_id):
    ids = [f"{job_id}-{n}" for n in range(12)]
    for n, each in enumerate(ids):
        put_blob(blobservice, each, b"job number %d" % n)

    answers = [create_job(jobservice, each, each).status_code for each in ids]

    assert answers == [201] * len(ids)
    assert {wait_for_job(jobservice, each)["status"] for each in ids} == {"SUCCEEDED"}
    assert [get_blob(blobservice, each).content for each in ids] == [
        b"JOB NUMBER %d" % n for n in range(len(ids))
    ]


def test_the_stats_count_the_jobs_accepted_and_not_yet_through_a_worker(
    jobservice, blobservice, job_id
):
    put_blob(blobservice, "counted", b"abc")
    jobservice.faults(execution_delay=30)
    create_job(jobservice, job_id, "counted")
    stats_url = f"{jobservice.url}/_control/stats"

    assert requests.get(stats_url, timeout=5).json()["unfinished"] == 1
    jobservice.clear_faults()  # the job runs now
    assert wait_for_job(jobservice, job_id)["status"] == "SUCCEEDED"
    deadline = time.monotonic() + 5
    while requests.get(stats_url, timeout=5).json()["unfinished"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert requests.get(stats_url, timeout=5).json()["unfinished"] == 0
    assert get_blob(blobservice, "counted").content == b"ABC"
