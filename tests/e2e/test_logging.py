"""The log files of the running stack's processes: gunicorn (its own lines and the API's), the
worker cluster and the reference services. What the API logs is tested in-process in
tests/frontservice/test_request_log.py; here, that no process of the stack writes a token or an
input byte anywhere, whatever logs it.
"""

import json
import uuid

import requests

from tests.support.api import wait_for_status


def test_tokens_and_input_bytes_never_reach_a_process_log(stack, alice):
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


def test_the_apis_log_is_one_json_object_per_line_gunicorns_own_lines_included(stack, alice):
    refused = requests.get(f"{stack.api}/api/v1/job/{uuid.uuid4()}/status", timeout=10)
    assert refused.status_code == 401

    lines = stack.processes["api"].log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert any(record["logger"] == "gunicorn.error" for record in records)
    # One line for the refused request: the access line, no django.request WARNING beside it.
    about_it = [r for r in records if r.get("request_id") == refused.headers["X-Request-ID"]]
    assert [record["logger"] for record in about_it] == ["frontservice.access"]
