"""frontservice_cli.main against a mocked API (`responses`): the commands' requests, and how
answers map to output and exit codes.

The end-to-end behaviour is in tests/e2e/test_cli.py; here are the cases a running server does
not produce on demand: waiting with `Prefer: wait` / Retry-After, non-JSON error pages, bugs and
interrupts. What the client sends is in test_client.py, uploads and downloads in test_progress.py.
"""

import json

import pytest
import requests
import responses

from frontservice_cli import main as cli_main
from frontservice_cli.errors import ExitCode

API = "http://frontservice.test/prefix"
JOB_ID = "5fae24ed-11a1-4c0d-a1d4-76da377c6978"
STATUS_URL = f"{API}/api/v1/job/{JOB_ID}/status"


def job(status="CREATED", **extra) -> dict:
    return {"id": JOB_ID, "status": status, "error": None, **extra}


def problem(status: int, code: str, detail: str) -> dict:
    return {"type": f"urn:frontservice:problem:{code}", "status": status, "code": code,
            "detail": detail, "title": "x"}  # fmt: skip


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def run(monkeypatch, capsys):
    """main() in this process, with the URL and token from the environment; sleeps recorded."""
    monkeypatch.setenv("FRONTSERVICE_URL", API + "/")
    monkeypatch.setenv("FRONTSERVICE_TOKEN", "tok-en")
    sleeps: list[float] = []
    monkeypatch.setattr(cli_main, "sleep", sleeps.append)

    def run(*argv: str):
        code = cli_main.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    run.sleeps = sleeps
    return run


# -- list


def test_list_sends_every_status_and_the_limit(mocked, run):
    mocked.get(f"{API}/api/v1/job", json={"results": [job("SUBMITTED")], "next": None})

    code, out, _ = run("list", "--status", "CREATED,SUBMITTED", "--status", "CANCELLED",
                       "--limit", "5")  # fmt: skip

    assert code == 0
    assert mocked.calls[0].request.params == {
        "status": ["CREATED", "SUBMITTED", "CANCELLED"],
        "limit": "5",
    }
    assert JOB_ID in out and "SUBMITTED" in out


def test_list_all_follows_next_until_the_last_page(mocked, run):
    page_2 = f"{API}/api/v1/job?cursor=p2"
    mocked.get(f"{API}/api/v1/job", json={"results": [job("CREATED")], "next": page_2},
               match=[responses.matchers.query_param_matcher({})])  # fmt: skip
    mocked.get(f"{API}/api/v1/job", json={"results": [job("SUBMITTED")], "next": None},
               match=[responses.matchers.query_param_matcher({"cursor": "p2"})])  # fmt: skip

    code, out, _ = run("--json", "list", "--all")

    assert code == 0
    assert [d["status"] for d in json.loads(out)["results"]] == ["CREATED", "SUBMITTED"]


# -- waiting


def test_wait_asks_the_server_to_hold_and_asks_again_at_once_when_it_did(mocked, run, monkeypatch):
    # A held request takes its time; the clock says so.
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(cli_main, "monotonic", lambda: next(clock))
    held = {"Preference-Applied": "wait=30"}
    mocked.get(STATUS_URL, json=job("SUBMITTED"))  # the first, plain status
    mocked.get(STATUS_URL, json=job("SUBMITTED"), headers=held)
    mocked.get(STATUS_URL, json=job("EXECUTION_COMPLETED"), headers=held)

    code, _, err = run("status", JOB_ID, "--wait")

    assert code == 0
    assert [call.request.headers.get("Prefer") for call in mocked.calls] == [
        None, "wait=30", "wait=30"
    ]  # fmt: skip
    assert run.sleeps == []
    assert err == f"job {JOB_ID}: SUBMITTED\njob {JOB_ID}: EXECUTION_COMPLETED\n"


def test_wait_honours_retry_after_when_the_server_does_not_hold(mocked, run):
    mocked.get(STATUS_URL, json=job("SUBMITTED"))  # the first, plain status
    mocked.get(STATUS_URL, json=job("SUBMITTED"), headers={"Retry-After": "3"})
    mocked.get(STATUS_URL, json=job("SUBMITTED"), headers={"Retry-After": "0"})
    mocked.get(STATUS_URL, json=job("SUBMITTED"))
    mocked.get(STATUS_URL, json=job("EXECUTION_COMPLETED"))

    code, _, _ = run("status", JOB_ID, "--wait")

    assert code == 0
    # 3 s as asked, 0 raised to the floor, then the default without Retry-After.
    assert run.sleeps == [3.0, cli_main.POLL_MIN, cli_main.POLL_DEFAULT]


def test_wait_backs_off_on_429_and_keeps_waiting(mocked, run):
    mocked.get(STATUS_URL, json=job("SUBMITTED"))
    mocked.get(STATUS_URL, json=problem(429, "rate_limited", "Slow down."), status=429,
               headers={"Retry-After": "7"}, content_type="application/problem+json")  # fmt: skip
    mocked.get(STATUS_URL, json=job("EXECUTION_COMPLETED"))

    code, _, _ = run("status", JOB_ID, "--wait")

    assert code == 0
    assert run.sleeps == [7.0]


@pytest.mark.parametrize("final", ["EXECUTION_ERROR", "STORED_ERROR", "CANCELLED"])
def test_wait_exits_1_on_an_error_or_cancelled_job(mocked, run, final):
    error = {"code": "x", "service": "jobservice", "message": "boom", "status_code": 500}
    mocked.get(STATUS_URL, json=job(final, error=error if final != "CANCELLED" else None))

    code, out, err = run("--json", "status", JOB_ID, "--wait")

    assert code == ExitCode.JOB_FAILED
    assert json.loads(out)["status"] == final
    expected = f"frontservice: job {JOB_ID} ended in {final}"
    if final != "CANCELLED":
        expected += ": boom (jobservice, HTTP 500) [x]"
    assert err.splitlines()[-1] == expected


# -- answers mapped to exit codes


@pytest.mark.parametrize(
    ("status", "code", "detail", "exit_code", "message"),
    [
        (404, "job_not_found", "No such job.", 3, "No such job. (HTTP 404 job_not_found)"),
        (404, "job_failed", "The job ended in X.", 1, "The job ended in X. (HTTP 404 job_failed)"),
        (404, "job_cancelled", "Cancelled.", 1, "Cancelled. (HTTP 404 job_cancelled)"),
        (409, "job_not_cancellable", "It is final.", 3,
         "It is final. (HTTP 409 job_not_cancellable)"),
        (401, "token_expired", "Token expired.", 3,
         "Token expired. (HTTP 401 token_expired); check --token, --token-file or "
         "FRONTSERVICE_TOKEN"),
    ],
)  # fmt: skip
def test_problem_documents_become_one_readable_line(mocked, run, status, code, detail,
                                                   exit_code, message):  # fmt: skip
    mocked.post(f"{API}/api/v1/job/{JOB_ID}/cancel", json=problem(status, code, detail),
                status=status, content_type="application/problem+json")  # fmt: skip

    result, out, err = run("cancel", JOB_ID)

    assert result == exit_code
    assert out == ""
    assert err == f"frontservice: {message}\n"


def test_an_error_page_that_is_not_json_is_still_one_line(mocked, run):
    mocked.get(STATUS_URL, body="<html>Bad Gateway</html>", status=502, content_type="text/html")

    code, _, err = run("status", JOB_ID)

    assert code == ExitCode.API_ERROR
    assert err == "frontservice: the API answered HTTP 502 Bad Gateway\n"


def test_an_unexpected_document_is_an_api_error_not_a_traceback(mocked, run):
    mocked.get(STATUS_URL, json=["not", "a", "job"])
    mocked.get(STATUS_URL, json={"id": JOB_ID})

    unexpected = "the API answered HTTP 200 with an unexpected document"
    assert run("status", JOB_ID) == (ExitCode.API_ERROR, "", f"frontservice: {unexpected}\n")
    assert run("status", JOB_ID)[0] == ExitCode.API_ERROR


def test_a_bug_in_the_client_is_one_line_with_exit_70(mocked, run, monkeypatch):
    mocked.get(STATUS_URL, json=job())
    monkeypatch.setattr(cli_main, "_describe", lambda job: 1 / 0)

    assert run("status", JOB_ID) == (
        ExitCode.BUG, "", "frontservice: unexpected error in the client: ZeroDivisionError: "
        "division by zero\n"
    )  # fmt: skip


def test_stdout_closed_by_its_reader_exits_141_quietly(mocked, run, monkeypatch):
    mocked.get(STATUS_URL, json=job())

    def closed(*args, **kwargs):
        raise BrokenPipeError

    monkeypatch.setattr(cli_main, "_describe", closed)

    assert run("status", JOB_ID) == (ExitCode.BROKEN_PIPE, "", "")


NOT_A_TOKEN = "the token is not a bearer token (visible ASCII characters only)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token-file", "/nonexistent/token"],
         "cannot read the token file /nonexistent/token: No such file or directory"),
        (["--token", "t\u00f6ken"], NOT_A_TOKEN),
        (["--token", "two words"], NOT_A_TOKEN),
        (["--url", "ftp://x"], "invalid --url 'ftp://x': not http(s)"),
    ],
)  # fmt: skip
def test_bad_connection_options_are_usage_errors(mocked, run, monkeypatch, argv, message):
    monkeypatch.delenv("FRONTSERVICE_TOKEN")

    token = [] if {"--token", "--token-file"} & set(argv) else ["--token", "t"]
    code, _, err = run(*argv, *token, "status", "x")

    assert (code, err) == (ExitCode.USAGE, f"frontservice: {message}\n")


def test_a_read_timeout_exits_5(mocked, run):
    mocked.get(STATUS_URL, body=requests.exceptions.ReadTimeout("slow"))

    code, _, err = run("status", JOB_ID)

    assert code == ExitCode.TIMEOUT
    assert err == f"frontservice: {API} did not answer within 60 s\n"


def test_cancel_reports_cancelling_and_cancelled(mocked, run):
    mocked.post(f"{API}/api/v1/job/{JOB_ID}/cancel", json=job("CANCELLING"), status=202)
    mocked.post(f"{API}/api/v1/job/{JOB_ID}/cancel", json=job("CANCELLED"), status=200)

    first = run("cancel", JOB_ID)
    second = run("cancel", JOB_ID)

    assert first == (
        0,
        f"{JOB_ID}  CANCELLING  (the cancel is in flight; see `status --wait`)\n",
        "",
    )
    assert second == (0, f"{JOB_ID}  CANCELLED\n", "")


def test_ctrl_c_exits_130_with_one_line(mocked, run):
    def interrupted(request):
        raise KeyboardInterrupt

    mocked.add_callback(responses.GET, STATUS_URL, callback=interrupted)

    assert run("status", JOB_ID) == (130, "", "frontservice: interrupted\n")
