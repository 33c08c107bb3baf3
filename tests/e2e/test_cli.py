"""The command-line client, run as its own process against the running stack.

The CLI is a separate program that talks HTTP to a server, so these tests need a real one
(gunicorn, a worker cluster, the reference services): the `stack` fixture. Each test runs
`python -m frontservice_cli` with FRONTSERVICE_URL / FRONTSERVICE_TOKEN in its environment and
checks the exit code, stdout, stderr, any file it wrote, and the job as stored. How the client
maps answers the stack does not produce on demand is in tests/frontservice_cli/.
"""

import hashlib
import json
import os
import signal
import subprocess
import uuid

import pytest

from jobs.models import Job
from tests.support.api import submit, wait_for_status, wait_for_stored_status
from tests.support.cli import REPO, cli_argv, cli_env, one_line_error, run_cli
from tests.support.processes import free_port

INPUT = b"Hello from the CLI: abc-xyz 0123 \xc3\xa9\xff\x00 end\n"
LISTED_INPUT = b"listed and cancelled"
UPPERCASED = INPUT.upper()


def cli(stack, owner, *args, **kwargs):
    return run_cli(stack.api, owner.token, *args, **kwargs)


def input_file(tmp_path, data: bytes = INPUT, name: str = "input.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def jobs_of(owner):
    return Job.objects.filter(tenant_id=owner.tenant_id, sub=owner.sub)


def listed(stack, owner, *args) -> dict:
    result = cli(stack, owner, "--json", "list", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- submit


def test_submit_prints_the_new_jobs_id_and_stores_it_for_the_caller(stack, alice, tmp_path):
    path = input_file(tmp_path)

    result = cli(stack, alice, "submit", str(path))

    assert result.returncode == 0, result.stderr
    job_id = result.stdout.decode().strip()
    job = Job.objects.get(pk=job_id)
    assert (job.tenant_id, job.sub) == (alice.tenant_id, alice.sub)
    assert job.input_size == len(INPUT)
    assert job.content_type == "text/plain"  # guessed from the file name
    # The worker takes it from there: it reaches JobService once.
    wait_for_stored_status(job_id, {"SUBMITTED", "EXECUTION_COMPLETED"})
    assert stack.stats("job")["by_id"][job_id]["PUT"] == 1


def test_submit_wait_output_writes_the_output_file(stack, alice, tmp_path):
    path = input_file(tmp_path, name="input.bin")
    out = tmp_path / "result.bin"

    result = cli(stack, alice, "submit", str(path), "--wait", "--output", str(out))

    assert result.returncode == 0, result.stderr
    job_id = result.stdout.decode().strip()
    assert out.read_bytes() == UPPERCASED
    # Downloaded to a temporary file beside it, then renamed: nothing else is left there.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.bin", "result.bin"]
    stderr = result.stderr.decode()
    assert f"job {job_id}: EXECUTION_COMPLETED" in stderr
    assert f"wrote {len(INPUT)} bytes to {out}" in stderr
    job = Job.objects.get(pk=job_id)
    assert job.status == "EXECUTION_COMPLETED"
    assert job.content_type == "application/octet-stream"
    assert (job.tenant_id, job.sub) == (alice.tenant_id, alice.sub)


def test_submit_reads_stdin_and_writes_the_output_to_stdout(stack, alice):
    result = cli(
        stack,
        alice,
        "submit",
        "-",
        "--output",
        "-",
        "--content-type",
        "application/x-demo",
        stdin=INPUT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == UPPERCASED
    # With the output on stdout the id goes to stderr, first.
    job_id = result.stderr.decode().splitlines()[0]
    job = Job.objects.get(pk=job_id)
    assert job.status == "EXECUTION_COMPLETED"
    assert job.content_type == "application/x-demo"
    assert job.input_size == len(INPUT)
    assert (job.tenant_id, job.sub) == (alice.tenant_id, alice.sub)


@pytest.mark.slow
def test_a_large_file_goes_up_and_comes_back_streamed(stack, alice, tmp_path):
    data = os.urandom(24 * 1024 * 1024)
    path = input_file(tmp_path, data, name="large.bin")
    out = tmp_path / "large.out"

    result = cli(stack, alice, "submit", str(path), "--output", str(out))

    assert result.returncode == 0, result.stderr
    job = Job.objects.get(pk=result.stdout.decode().strip())
    assert (job.status, job.input_size) == ("EXECUTION_COMPLETED", len(data))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data.upper()).digest()


def test_submit_json_wait_prints_the_final_document(stack, alice, tmp_path):
    path = input_file(tmp_path)

    result = cli(stack, alice, "submit", str(path), "--wait", "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "EXECUTION_COMPLETED"
    assert document["error"] is None
    assert Job.objects.get(pk=document["id"]).status == "EXECUTION_COMPLETED"


def test_submit_with_an_idempotency_key_makes_one_job(stack, alice, tmp_path):
    path = input_file(tmp_path)
    key = f"cli-{uuid.uuid4()}"

    first = cli(stack, alice, "submit", str(path), "--idempotency-key", key)
    again = cli(stack, alice, "submit", str(path), "--idempotency-key", key)

    assert first.returncode == 0 and again.returncode == 0, (first.stderr, again.stderr)
    assert first.stdout == again.stdout
    assert jobs_of(alice).count() == 1


def test_forced_progress_shows_the_upload_bar_and_the_status_line(stack, alice, tmp_path):
    path = input_file(tmp_path, INPUT * 1000)
    out = tmp_path / "out"

    result = cli(stack, alice, "--progress", "submit", str(path), "--output", str(out))

    assert result.returncode == 0, result.stderr
    stderr = result.stderr.decode()
    assert "upload" in stderr and "download" in stderr
    # The live line is rewritten in place ("\r" and erase-line), ending on the final status.
    assert "\r\x1b[K" in stderr and "EXECUTION_COMPLETED" in stderr
    assert out.read_bytes() == UPPERCASED * 1000


def test_without_a_terminal_there_are_no_progress_bars(stack, alice, tmp_path):
    path = input_file(tmp_path)

    result = cli(stack, alice, "submit", str(path))

    assert result.returncode == 0
    assert result.stderr == b""


def test_a_job_that_fails_exits_1_with_its_error(quiet_stack, alice, tmp_path):
    stack = quiet_stack
    stack.faults("job", fail_next=1, status=400, methods=["PUT"])
    path = input_file(tmp_path)
    out = tmp_path / "out"

    result = cli(stack, alice, "submit", str(path), "--output", str(out))

    assert result.returncode == 1
    job_id = result.stdout.decode().strip()
    assert f"job {job_id} ended in SUBMITTED_ERROR" in result.stderr.decode()
    assert "jobservice, HTTP 400" in result.stderr.decode().splitlines()[-1]
    assert not out.exists()
    assert Job.objects.get(pk=job_id).status == "SUBMITTED_ERROR"

    output = cli(stack, alice, "output", job_id, str(out))

    assert output.returncode == 1
    assert "(HTTP 404 job_failed)" in one_line_error(output)
    assert not out.exists()


# -- status


def test_status_prints_the_job_document_readably(stack, alice):
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    result = cli(stack, alice, "status", job_id)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == f"id:           {job_id}"
    assert lines[1] == "status:       EXECUTION_COMPLETED"
    assert any(line.startswith("created_at:") for line in lines)


def test_status_json_accepts_the_global_options_after_the_command(stack, alice):
    job_id = submit(stack, alice, INPUT)["id"]

    result = cli(stack, alice, "status", job_id, "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["id"] == job_id
    assert document["status"] in {"CREATED", "STORED", "SUBMITTED", "EXECUTION_COMPLETED"}


def test_status_wait_returns_when_the_job_completes(stack, alice):
    job_id = submit(stack, alice, INPUT)["id"]

    result = cli(stack, alice, "status", job_id, "--wait")

    assert result.returncode == 0, result.stderr
    assert "status:       EXECUTION_COMPLETED" in result.stdout.decode()
    assert f"job {job_id}: EXECUTION_COMPLETED" in result.stderr.decode()
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"


def test_status_wait_gives_up_at_its_timeout_with_exit_5(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    try:
        result = cli(stack, alice, "status", job_id, "--wait", "--timeout", "1")
    finally:
        stack.cancel_remote(job_id)

    assert result.returncode == 5
    assert result.stderr.decode().splitlines()[-1] == (
        f"frontservice: job {job_id} is still SUBMITTED after 1 s (--timeout)"
    )
    assert "Traceback" not in result.stderr.decode()


def test_ctrl_c_while_waiting_exits_130_without_a_traceback(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    process = subprocess.Popen(
        cli_argv("status", job_id, "--wait"),
        env=cli_env(stack.api, alice.token),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The first status line says it is waiting; then Ctrl-C (SIGINT to its PID).
        assert process.stderr.readline().decode() == f"job {job_id}: SUBMITTED\n"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stack.cancel_remote(job_id)

    assert process.returncode == 130
    assert stderr.decode() == "frontservice: interrupted\n"
    assert stdout == b""


# -- output


def test_output_writes_the_bytes_to_a_file_or_stdout(stack, alice, tmp_path):
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    out = tmp_path / "out.bin"

    to_file = cli(stack, alice, "output", job_id, str(out))
    to_stdout = cli(stack, alice, "output", job_id)
    to_dash = cli(stack, alice, "output", job_id, "-")

    assert to_file.returncode == 0, to_file.stderr
    assert out.read_bytes() == UPPERCASED
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert to_stdout.returncode == 0 and to_stdout.stdout == UPPERCASED
    assert to_dash.returncode == 0 and to_dash.stdout == UPPERCASED


@pytest.mark.slow
def test_a_download_cut_off_mid_way_resumes_where_it_stopped(quiet_stack, alice, tmp_path):
    stack = quiet_stack
    stack.clear_faults()
    data = os.urandom(12 * 1024 * 1024)
    job_id = submit(stack, alice, data)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=120)
    gets_before = stack.stats("blob")["by_id"][job_id].get("GET", 0)
    # BlobService drops the next download after 5 MiB: the API's answer to the CLI breaks there.
    stack.faults("blob", cut_next_get_after=5 * 1024 * 1024)
    out = tmp_path / "out.bin"

    try:
        result = cli(stack, alice, "output", job_id, str(out))
    finally:
        stack.clear_faults()

    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data.upper()).digest()
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert f"wrote {len(data)} bytes to {out}" in result.stderr.decode()
    # Two downloads reached BlobService: the one cut off, and the rest (a Range request).
    assert stack.stats("blob")["by_id"][job_id]["GET"] == gets_before + 2
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"


def test_output_of_a_running_job_is_output_not_ready(quiet_stack, alice, tmp_path):
    stack = quiet_stack
    stack.faults("job", execution_delay=30)
    job_id = submit(stack, alice, INPUT)["id"]
    wait_for_stored_status(job_id, {"SUBMITTED"})
    try:
        result = cli(stack, alice, "output", job_id, str(tmp_path / "out"))
    finally:
        stack.cancel_remote(job_id)

    assert result.returncode == 3
    assert one_line_error(result) == (
        "frontservice: The job is SUBMITTED; its output is not ready. (HTTP 404 output_not_ready)"
    )
    assert list(tmp_path.iterdir()) == []


# -- errors


def test_a_bad_token_exits_3_with_the_401_code(stack, alice, tmp_path):
    path = input_file(tmp_path)

    result = run_cli(stack.api, "not-a-jwt", "submit", str(path))

    assert result.returncode == 3
    line = one_line_error(result)
    assert "(HTTP 401 invalid_token)" in line
    assert "check --token, --token-file or FRONTSERVICE_TOKEN" in line
    assert result.stdout == b""
    assert not jobs_of(alice).exists()


def test_the_token_can_come_from_a_file(stack, alice, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(alice.token + "\n")
    path = input_file(tmp_path)

    result = run_cli(stack.api, None, "--token-file", str(token_file), "submit", str(path))

    assert result.returncode == 0, result.stderr
    assert jobs_of(alice).get().id == uuid.UUID(result.stdout.decode().strip())


def test_no_token_is_a_usage_error(stack, tmp_path):
    result = run_cli(stack.api, None, "status", str(uuid.uuid4()))

    assert result.returncode == 2
    assert one_line_error(result) == (
        "frontservice: no token: pass --token or --token-file, or set FRONTSERVICE_TOKEN"
    )


def test_an_unknown_or_someone_elses_job_exits_3_job_not_found(stack, alice, bob):
    bobs_job = submit(stack, bob, INPUT)["id"]

    for job_id in (str(uuid.uuid4()), bobs_job, "../../etc"):
        result = cli(stack, alice, "status", job_id)

        assert result.returncode == 3, job_id
        assert one_line_error(result) == "frontservice: No such job. (HTTP 404 job_not_found)"
    assert Job.objects.get(pk=bobs_job).sub == bob.sub


def test_a_server_that_is_down_exits_4(alice, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    path = input_file(tmp_path)

    result = run_cli(url, alice.token, "submit", str(path))

    assert result.returncode == 4
    assert one_line_error(result) == f"frontservice: cannot reach {url}: connection refused"
    assert not jobs_of(alice).exists()


def test_a_missing_input_file_exits_2(stack, alice, tmp_path):
    result = cli(stack, alice, "submit", str(tmp_path / "nope.bin"))

    assert result.returncode == 2
    assert one_line_error(result) == (
        f"frontservice: cannot read {tmp_path / 'nope.bin'}: No such file or directory"
    )
    assert not jobs_of(alice).exists()


def test_an_empty_input_is_the_apis_empty_input(stack, alice, tmp_path):
    path = input_file(tmp_path, b"")

    result = cli(stack, alice, "submit", str(path))

    assert result.returncode == 3
    assert one_line_error(result) == "frontservice: The input is empty. (HTTP 400 empty_input)"
    assert not jobs_of(alice).exists()


def test_bad_arguments_are_a_one_line_usage_error(stack, alice):
    for args in (
        ["submit"],
        ["bogus"],
        ["list", "--limit", "0"],
        ["status", "x", "--timeout", "-1"],
    ):
        result = cli(stack, alice, *args)

        assert result.returncode == 2, args
        assert one_line_error(result).endswith(" --help)")


# -- list


def test_list_shows_only_the_callers_jobs_newest_first(stack, alice, bob):
    alices = [submit(stack, alice, LISTED_INPUT)["id"] for _ in range(3)]
    bobs = submit(stack, bob, LISTED_INPUT)["id"]

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
    ids = [submit(stack, alice, LISTED_INPUT)["id"] for _ in range(5)]

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
    done = submit(stack, alice, LISTED_INPUT)["id"]
    wait_for_status(stack, alice, done, {"EXECUTION_COMPLETED"})
    stack.faults("job", execution_delay=30)
    running = submit(stack, alice, LISTED_INPUT)["id"]
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
    job_id = submit(stack, alice, LISTED_INPUT)["id"]
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
    job_id = submit(stack, alice, LISTED_INPUT)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    result = cli(stack, alice, "cancel", job_id)

    assert result.returncode == 3
    assert "(HTTP 409 job_not_cancellable)" in one_line_error(result)
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"


def test_cancelling_someone_elses_or_an_unknown_job_is_job_not_found(stack, alice, bob):
    bobs = submit(stack, bob, LISTED_INPUT)["id"]

    for job_id in (bobs, str(uuid.uuid4())):
        result = cli(stack, alice, "cancel", job_id)

        assert result.returncode == 3
        assert one_line_error(result) == "frontservice: No such job. (HTTP 404 job_not_found)"
    assert Job.objects.get(pk=bobs).status != "CANCELLED"
