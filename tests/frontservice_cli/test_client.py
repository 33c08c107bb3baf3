"""frontservice_cli.client against a mocked API (`responses`, or requests' adapter itself): what
it sends. The end-to-end behaviour against a running server is in tests/e2e/test_cli.py.
"""

import io
import json
import os
import sys

import pytest
import requests
import responses

from frontservice_cli.client import Client
from frontservice_cli.progress import UploadReader, open_input

API = "http://frontservice.test/prefix"
JOB_ID = "5fae24ed-11a1-4c0d-a1d4-76da377c6978"


def job(status="CREATED", **extra) -> dict:
    return {"id": JOB_ID, "status": status, "error": None, **extra}


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def test_submit_streams_the_file_with_content_length(monkeypatch, tmp_path):
    path = tmp_path / "in.bin"
    path.write_bytes(b"x" * 300_000)
    sent, reads = [], []

    # The boundary itself (responses would read the body whole to record it): the prepared
    # request as requests hands it to the connection, which reads it in blocks.
    def send(adapter, request, **kwargs):
        sent.append(request)
        while block := request.body.read(16384):
            reads.append(len(block))
        response = requests.Response()
        response.status_code, response._content = 202, json.dumps(job()).encode()
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)

    with open_input(str(path), progress=False) as body:
        Client(API, "tok-en").submit(
            body, content_type="application/x-demo", callback_url="https://hooks.test/x?a=1",
            idempotency_key="key-1",
        )  # fmt: skip

    request = sent[0]
    assert request.headers["Content-Length"] == "300000"
    assert "Transfer-Encoding" not in request.headers
    assert request.headers["Content-Type"] == "application/x-demo"
    assert request.headers["Authorization"] == "Bearer tok-en"
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.url == f"{API}/api/v1/job?callback_url=https%3A%2F%2Fhooks.test%2Fx%3Fa%3D1"
    # The body handed over is the reader, read block by block, not the file's bytes.
    assert isinstance(request.body, UploadReader)
    assert sum(reads) == 300_000 and max(reads) == 16384


def test_stdin_from_a_pipe_is_sent_chunked(mocked, monkeypatch):
    read_end, write_end = os.pipe()
    os.write(write_end, b"piped input")
    os.close(write_end)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(read_end, "rb")))
    mocked.post(f"{API}/api/v1/job", json=job(), status=202)

    with open_input("-", progress=False) as body:
        Client(API, "tok-en").submit(body, content_type="application/octet-stream")
        sent = mocked.calls[0].request
        assert sent.headers["Transfer-Encoding"] == "chunked"
        assert b"".join(sent.body) == b"piped input"


def test_the_next_link_is_followed_on_the_configured_url_only(mocked):
    mocked.get(f"{API}/api/v1/job", json={"results": [], "next": None})

    Client(API, "tok-en").list_jobs(
        statuses=[], limit=None, next_url="http://internal:8000/api/v1/job?cursor=abc&limit=5"
    )

    assert mocked.calls[0].request.url == f"{API}/api/v1/job?cursor=abc&limit=5"
