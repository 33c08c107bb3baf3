"""The CLI's `list` and `cancel`, end to end against the running stack.

They drive GET /api/v1/job and POST /api/v1/job/{id}/cancel, which come from other branches of
issue 6 (listing, cancel): until those are merged, these tests fail with the API's 405/404.
"""

import json
import uuid

from jobs.models import Job
from tests.support.api import submit, wait_for_status, wait_for_stored_status
from tests.support.cli import one_line_error, run_cli

INPUT = b"listed and cancelled"


def cli(stack, owner, *args):
    return run_cli(stack.api, owner.token, *args)


def listed(stack, owner, *args) -> dict:
    result = cli(stack, owner, "--json", "list", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- list


def test_list_shows_only_the_callers_jobs_newest_first(stack, alice, bob):
    alices = [submit(stack, alice, INPUT)["id"] for _ in range(3)]
    bobs = submit(stack, bob, INPUT)["id"]

    page = listed(stack, alice)
    table = cli(stack, alice, "list")

    assert [job["id"] for job in page["results"]] == alices[::-1]
    assert page["next"] is None
    assert table.returncode == 0, table.stderr
    lines = table.stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "STATUS", "CREATED", "SIZE"]
    assert [line.split()[0] for line in lines[1:]] == alices[::-1]
    assert bobs not in table.stdout.decode()
    assert Job.objects.filter(tenant_id=alice.tenant_id, sub=alice.sub).count() == 3


def test_list_pages_with_limit_and_follows_them_all_with_all(stack, alice):
    ids = [submit(stack, alice, INPUT)["id"] for _ in range(5)]

    first = listed(stack, alice, "--limit", "2")
    everything = listed(stack, alice, "--limit", "2", "--all")
    table = cli(stack, alice, "list", "--limit", "2")

    assert [job["id"] for job in first["results"]] == ids[:-3:-1]
    assert first["next"]
    assert [job["id"] for job in everything["results"]] == ids[::-1]
    assert everything["next"] is None
    assert table.returncode == 0
    assert "more jobs: pass --all" in table.stderr.decode()


def test_list_filters_by_status(quiet_stack, alice):
    stack = quiet_stack
    done = submit(stack, alice, INPUT)["id"]
    wait_for_status(stack, alice, done, {"EXECUTION_COMPLETED"})
    stack.faults("job", execution_delay=30)
    running = submit(stack, alice, INPUT)["id"]
    wait_for_stored_status(running, {"SUBMITTED"})
    try:
        submitted = listed(stack, alice, "--status", "SUBMITTED")
        both = listed(stack, alice, "--status", "SUBMITTED,EXECUTION_COMPLETED")
        also_both = listed(stack, alice, "--status", "SUBMITTED", "EXECUTION_COMPLETED")
    finally:
        stack.cancel_remote(running)

    assert [job["id"] for job in submitted["results"]] == [running]
    assert [job["id"] for job in both["results"]] == [running, done]
    assert [job["id"] for job in also_both["results"]] == [running, done]


# -- cancel


def test_cancel_a_running_job_then_wait_exits_1_cancelled(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    try:
        cancelled = cli(stack, alice, "cancel", job_id)
        waited = cli(stack, alice, "status", job_id, "--wait", "--timeout", "60")
        output = cli(stack, alice, "output", job_id)
        # Read before the clean-up below sends its own DELETE.
        deletes = stack.stats("job")["by_id"].get(job_id, {}).get("DELETE", 0)
    finally:
        stack.cancel_remote(job_id)

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.decode().split()[:2] in ([job_id, "CANCELLED"], [job_id, "CANCELLING"])
    assert waited.returncode == 1
    assert waited.stderr.decode().splitlines()[-1] == (
        f"frontservice: job {job_id} ended in CANCELLED"
    )
    assert output.returncode == 1
    assert "(HTTP 404 job_cancelled)" in one_line_error(output)
    assert Job.objects.get(pk=job_id).status == "CANCELLED"
    assert deletes == 1  # the submitted job was cancelled in JobService


def test_cancelling_a_finished_job_exits_3_not_cancellable(stack, alice):
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    result = cli(stack, alice, "cancel", job_id)

    assert result.returncode == 3
    assert "(HTTP 409 job_not_cancellable)" in one_line_error(result)
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"


def test_cancelling_someone_elses_or_an_unknown_job_is_job_not_found(stack, alice, bob):
    bobs = submit(stack, bob, INPUT)["id"]

    for job_id in (bobs, str(uuid.uuid4())):
        result = cli(stack, alice, "cancel", job_id)

        assert result.returncode == 3
        assert one_line_error(result) == "frontservice: No such job. (HTTP 404 job_not_found)"
    assert Job.objects.get(pk=bobs).status != "CANCELLED"
