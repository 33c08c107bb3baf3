"""Structured logs (frontservice/request_log.py): one JSON line per request and per status change,
with the request id; never a token or an input byte. In-process: every record of every logger is
formatted, as it is emitted, by the formatter the settings give the console handler.

The stack's processes' own log files (gunicorn's lines, the worker, the reference services) are
read in tests/e2e/test_logging.py.
"""

import json
import logging
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from frontservice.request_log import JsonFormatter, PlainFormatter
from jobs.models import Job
from orchestration.reconcile import reconcile
from tests.support.inprocess import run_tasks, submit, wait_for_status
from tests.support.inprocess_webhooks import finish_and_deliver, post_job
from tests.support.webhooks import Receiver


class Lines(logging.Handler):
    """Every record, formatted at emit time (the request id is the one of that moment) by the
    configured formatter, and by the other one (LOG_FORMAT=plain) for the leak checks."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []
        self.plain: list[str] = []
        self._plain = PlainFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.plain.append(self._plain.format(record))

    def json(self, predicate) -> list[dict]:
        found = []
        for line in self.lines:
            record = json.loads(line)
            if predicate(record):
                found.append(record)
        return found


@pytest.fixture
def log():
    """What the process logs during the test, at every level, as its console would have it."""
    root = logging.getLogger()
    configured = [
        handler.formatter for handler in root.handlers if isinstance(handler, logging.StreamHandler)
    ]
    # The settings' console handler, with LOG_FORMAT's default: one JSON object per line.
    json_formatters = [f for f in configured if isinstance(f, JsonFormatter)]
    assert len(json_formatters) == 1, configured
    lines = Lines(json_formatters[0])
    level = root.level
    root.addHandler(lines)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.setLevel(level)
        root.removeHandler(lines)


def test_each_request_logs_one_json_line_with_the_request_id_it_was_sent(api, alice, log):
    job_id = submit(api, alice, b"log me")["id"]
    request_id = f"test-{uuid.uuid4().hex}"

    response = api.get(
        f"/api/v1/job/{job_id}/status?verbose=1", alice, headers={"X-Request-ID": request_id}
    )

    assert response["X-Request-ID"] == request_id
    lines = log.json(
        lambda line: line.get("event") == "request" and line.get("request_id") == request_id
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


def test_a_request_id_is_generated_when_none_or_an_unsafe_one_is_sent(api, log):
    plain = api.get("/healthz")
    unsafe = api.get("/healthz", headers={"X-Request-ID": "<script>" + "x" * 200})

    for response in (plain, unsafe):
        generated = response["X-Request-ID"]
        assert len(generated) == 32 and int(generated, 16) >= 0
        lines = log.json(lambda line, rid=generated: line.get("request_id") == rid)
        assert [line["route"] for line in lines] == ["healthz"]


def test_status_changes_are_json_lines_with_job_tenant_and_statuses(api, alice, log):
    job_id = submit(api, alice, b"watch me")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})

    lines = log.json(
        lambda line: line.get("event") == "job_status" and line.get("job_id") == job_id
    )
    changes = {(line["from"], line["to"]): line for line in lines}

    # Made by the worker's task.
    assert set(changes) >= {("CREATED", "STORED"), ("STORED", "SUBMITTED")}
    for line in changes.values():
        assert line["tenant"] == alice.tenant_id
        assert line["reason"]
        assert line["by"] == "frontservice"
    # The last change is made by a status request, and carries that request's id.
    final = changes[("SUBMITTED", "EXECUTION_COMPLETED")]
    assert final["tenant"] == alice.tenant_id
    requests_with_that_id = log.json(
        lambda line: (
            line.get("event") == "request" and line.get("request_id") == final["request_id"]
        )
    )
    assert requests_with_that_id[0]["job_id"] == job_id


def test_tokens_and_input_bytes_never_reach_a_log(api, alice, log):
    token = alice.token
    headers = {"Authorization": f"Bearer {token}"}
    body = f"secret-input-{uuid.uuid4().hex}".encode()
    response = api.submit(alice, body, headers=headers)
    assert response.status_code == 202
    job_id = response.json()["id"]
    multipart = api.post(
        "/api/v1/job",
        alice,
        data={"input": SimpleUploadedFile("in.txt", body + b"-multipart")},
        format="multipart",
        headers=headers,
    )
    assert multipart.status_code == 202
    # A refused token is not logged either.
    refused = api.get(f"/api/v1/job/{job_id}/status", headers={"Authorization": f"Bearer {token}x"})
    assert refused.status_code == 401
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    wait_for_status(api, alice, multipart.json()["id"], {"EXECUTION_COMPLETED"})

    assert log.lines, "nothing was logged: the check would prove nothing"
    for text in ("\n".join(log.lines), "\n".join(log.plain)):
        assert token not in text
        assert body.decode() not in text
        assert body.upper().decode() not in text  # the output neither


# --- One request id follows a job ------------------------------------------------------------


def _about(log, job_id: str) -> list[dict]:
    return log.json(lambda line: line.get("job_id") == job_id)


def test_the_posts_access_line_names_the_job_and_the_job_keeps_the_request_id(api, alice, log):
    request_id = f"post-{uuid.uuid4().hex}"

    response = api.submit(alice, b"follow me", headers={"X-Request-ID": request_id})

    job_id = response.json()["id"]
    [access] = log.json(
        lambda line: line.get("event") == "request" and line.get("request_id") == request_id
    )
    assert (access["route"], access["status"], access["job_id"]) == ("job-list", 202, job_id)
    assert Job.objects.get(pk=job_id).request_id == request_id


def test_the_workers_lines_about_a_job_carry_the_request_id_that_created_it(
    api, services, alice, log
):
    request_id = f"post-{uuid.uuid4().hex}"
    job_id = api.submit(alice, b"work", headers={"X-Request-ID": request_id}).json()["id"]
    before = len(log.lines)

    run_tasks()  # the orchestration task: store, then submit

    worker = [json.loads(line) for line in log.lines[before:]]
    changes = [line for line in worker if line.get("event") == "job_status"]
    assert {(line["from"], line["to"]) for line in changes} == {
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
    }
    about_the_job = [line for line in worker if line.get("job_id") == job_id]
    assert about_the_job and all(line["request_id"] == request_id for line in about_the_job)


def test_the_reconcilers_lines_about_a_job_carry_its_ids(api, services, alice, log):
    request_id = f"post-{uuid.uuid4().hex}"
    job_id = api.submit(alice, b"lost task", headers={"X-Request-ID": request_id}).json()["id"]
    run_tasks()  # its task ran; now pretend it was lost long ago (an era no other test uses)
    era = timedelta(days=30 * 365)
    Job.objects.filter(pk=job_id).update(
        status="CREATED", updated_at=timezone.now() - era, checked_at=None
    )
    before = len(log.lines)

    report = reconcile(
        stuck_after=timedelta(minutes=5), now=timezone.now() - era + timedelta(hours=1)
    )

    assert report.requeued == [job_id]
    [stuck] = [
        json.loads(line) for line in log.lines[before:] if "stuck in" in json.loads(line)["msg"]
    ]
    assert (stuck["job_id"], stuck["request_id"]) == (job_id, request_id)
    run_tasks()


def test_the_webhooks_lines_carry_the_job_and_request_ids(api, services, alice, log):
    receiver = Receiver().start()
    try:
        request_id = f"post-{uuid.uuid4().hex}"
        response = post_job(
            api, alice, callback_url=receiver.url(), headers={"X-Request-ID": request_id}
        )
        job_id = response.json()["id"]
        finish_and_deliver(api, alice, job_id)
    finally:
        receiver.stop()

    delivered = [line for line in _about(log, job_id) if "webhook" in line["msg"]]
    assert delivered and all(line["request_id"] == request_id for line in delivered)


def test_a_refused_request_logs_one_line(api, alice, log):
    request_id = f"missing-{uuid.uuid4().hex}"

    response = api.get(
        f"/api/v1/job/{uuid.uuid4()}/status", alice, headers={"X-Request-ID": request_id}
    )

    assert response.status_code == 404
    lines = log.json(lambda line: line.get("request_id") == request_id and line["level"] != "DEBUG")
    # The access line says 404; django.request's WARNING would say it a second time.
    assert [line["logger"] for line in lines] == ["frontservice.access"]
