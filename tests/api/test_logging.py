"""Structured logs: one JSON line per request and per status change, with the request id; never a
token or an input byte."""

import json
import time
import uuid

import requests

from tests.support.api import submit, wait_for_status


def _json_lines(process) -> list[dict]:
    lines = []
    for line in process.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # gunicorn's own start-up lines are not Django's
        if isinstance(record, dict):
            lines.append(record)
    return lines


def _wait_for_lines(process, predicate, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in _json_lines(process) if predicate(line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_each_request_logs_one_json_line_with_the_request_id_it_was_sent(stack, alice):
    job_id = submit(stack, alice, b"log me")["id"]
    request_id = f"test-{uuid.uuid4().hex}"

    response = requests.get(
        f"{stack.api}/api/v1/job/{job_id}/status?verbose=1",
        headers={**alice.headers, "X-Request-ID": request_id},
        timeout=10,
    )

    assert response.headers["X-Request-ID"] == request_id
    lines = _wait_for_lines(
        stack.processes["api"],
        lambda line: line.get("event") == "request" and line.get("request_id") == request_id,
    )
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET"
    assert line["route"] == "job-status"
    assert line["path"] == f"/api/v1/job/{job_id}/status"  # no query string
    assert line["status"] == 200
    assert line["tenant"] == alice.tenant_id
    assert line["sub"] == alice.sub
    assert line["job_id"] == job_id
    assert line["duration_ms"] >= 0


def test_a_request_id_is_generated_when_none_or_an_unsafe_one_is_sent(stack):
    plain = requests.get(f"{stack.api}/healthz", timeout=5)
    unsafe = requests.get(
        f"{stack.api}/healthz", headers={"X-Request-ID": "<script>" + "x" * 200}, timeout=5
    )

    for response in (plain, unsafe):
        generated = response.headers["X-Request-ID"]
        assert len(generated) == 32 and int(generated, 16) >= 0
        lines = _wait_for_lines(
            stack.processes["api"], lambda line, rid=generated: line.get("request_id") == rid
        )
        assert [line["route"] for line in lines] == ["healthz"]


def test_status_changes_are_json_lines_with_job_tenant_and_statuses(stack, alice):
    job_id = submit(stack, alice, b"watch me")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})

    def changes(process):
        lines = _wait_for_lines(
            process,
            lambda line: line.get("event") == "job_status" and line.get("job_id") == job_id,
        )
        return {(line["from"], line["to"]): line for line in lines}

    in_worker = changes(stack.processes["worker"])
    assert set(in_worker) >= {("CREATED", "STORED"), ("STORED", "SUBMITTED")}
    for line in in_worker.values():
        assert line["tenant"] == alice.tenant_id
        assert line["reason"]
        assert line["by"] == "frontservice"
    # The last change is made by a status request, and carries that request's id.
    in_api = changes(stack.processes["api"])
    final = in_api[("SUBMITTED", "EXECUTION_COMPLETED")]
    assert final["tenant"] == alice.tenant_id
    requests_with_that_id = _wait_for_lines(
        stack.processes["api"],
        lambda line: (
            line.get("event") == "request" and line.get("request_id") == final["request_id"]
        ),
    )
    assert requests_with_that_id[0]["job_id"] == job_id


def test_tokens_and_input_bytes_never_reach_a_log(stack, alice):
    token = alice.token
    headers = {"Authorization": f"Bearer {token}"}
    body = f"secret-input-{uuid.uuid4().hex}".encode()
    response = requests.post(f"{stack.api}/api/v1/job", data=body, headers=headers, timeout=30)
    assert response.status_code == 202
    job_id = response.json()["id"]
    multipart = requests.post(
        f"{stack.api}/api/v1/job",
        files={"input": ("in.txt", body + b"-multipart")},
        headers=headers,
        timeout=30,
    )
    assert multipart.status_code == 202
    # A refused token is not logged either.
    refused = requests.get(
        f"{stack.api}/api/v1/job/{job_id}/status",
        headers={"Authorization": f"Bearer {token}x"},
        timeout=10,
    )
    assert refused.status_code == 401
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    wait_for_status(stack, alice, multipart.json()["id"], {"EXECUTION_COMPLETED"})

    for process in stack.processes.values():
        log = process.log_path.read_bytes()
        assert token.encode() not in log, process.name
        assert body not in log, process.name
        assert body.upper() not in log, process.name  # the output neither
