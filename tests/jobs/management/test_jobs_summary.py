"""`manage.py jobs_summary`: what an operator reads first, counts by status, stuck jobs, the
queue, task results, the staging area and idempotency keys; as text or JSON.

Jobs are put in their status with the ORM, each in a tenant of its own, and deleted afterwards.
"""

import io
import json
import re
import uuid
from datetime import timedelta

import pytest
from bson import ObjectId
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers.mongo import Mongo
from django_q.conf import Conf

from frontservice.broker import ForkSafeMongo
from jobs.models import Job
from jobs.states import Status


@pytest.fixture
def tenant_jobs(make_job):
    """A fresh tenant's jobs: two stuck in CREATED (one for 2 h), one SUBMITTED, one done."""
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    stuck = make_job(tenant_id=tenant, status=Status.CREATED)
    fresh = make_job(tenant_id=tenant, status=Status.CREATED)
    submitted = make_job(tenant_id=tenant, status=Status.SUBMITTED)
    make_job(tenant_id=tenant, status=Status.EXECUTION_COMPLETED)
    Job.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    Job.objects.filter(pk=submitted.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    return {"tenant": tenant, "stuck": stuck, "fresh": fresh, "submitted": submitted}


def _summary(*args: str) -> str:
    out = io.StringIO()
    call_command("jobs_summary", *args, stdout=out)
    return out.getvalue()


def test_the_summary_counts_a_tenants_jobs_and_names_the_stuck_ones(tenant_jobs):
    text = _summary(
        "--tenant", tenant_jobs["tenant"], "--stuck-after", "3600", "--refresh-after", "300"
    )

    lines = text.splitlines()
    assert len(lines) <= 40, text
    assert f"(tenant {tenant_jobs['tenant']})" in lines[0]
    assert "Jobs by status (4 in all)" in lines
    counts = dict(re.findall(r"^  (\w+)\s+(\d+)$", text, re.M))
    assert counts == {
        "CREATED": "2",
        "STORED": "0",
        "STORED_ERROR": "0",
        "SUBMITTED": "1",
        "SUBMITTED_ERROR": "0",
        "EXECUTION_COMPLETED": "1",
        "EXECUTION_ERROR": "0",
        "CANCELLING": "0",
        "CANCELLED": "0",
    }
    assert "  CREATED/STORED unchanged for 1h or more: 1" in lines
    assert f"    {tenant_jobs['stuck'].pk}  CREATED    2h" in lines
    assert "  SUBMITTED unchanged for 5m or more: 1" in lines
    assert f"    {tenant_jobs['submitted'].pk}  SUBMITTED  10m" in lines
    assert "  CANCELLING unchanged for 5m or more: 0" in lines
    assert str(tenant_jobs["fresh"].pk) not in text
    assert re.search(r"^  \d+ waiting, \d+ in flight; oldest waiting: ", text, re.M)
    assert re.search(r"^Tasks in the last hour: \d+ succeeded, \d+ failed$", text, re.M)
    assert re.search(r"^Idempotency keys: \d+ \(\d+ expired, not removed yet\)$", text, re.M)


def test_the_summary_as_json_counts_every_tenant(tenant_jobs):
    summary = json.loads(_summary("--json"))

    by_status = summary["jobs"]["by_status"]
    assert set(by_status) == set(Status.values)
    assert by_status["CREATED"] >= 2 and by_status["SUBMITTED"] >= 1
    assert summary["jobs"]["total"] == sum(by_status.values()) >= 4
    assert summary["tenant"] is None
    assert set(summary["stuck"]) == {"created_or_stored", "submitted", "cancelling"}
    assert summary["queue"]["broker"] == "mongodb"
    assert summary["tasks"]["save_limit"] == Conf.SAVE_LIMIT
    assert set(summary["staging"]) >= {"inputs", "input_bytes", "partial_uploads"}
    assert summary["idempotency_keys"]["ttl_seconds"] > 0


def test_the_summary_counts_the_staging_area(settings, tmp_path):
    settings.STAGING_DIR = str(tmp_path)
    (tmp_path / "tmp").mkdir()
    (tmp_path / str(uuid.uuid4())).write_bytes(b"x" * 1000)
    (tmp_path / str(uuid.uuid4())).write_bytes(b"x" * 2000)
    (tmp_path / "tmp" / "upload-abc").write_bytes(b"x" * 10)
    (tmp_path / "not-an-input").write_bytes(b"x")

    staging = json.loads(_summary("--json"))["staging"]

    assert staging == {
        "dir": str(tmp_path),
        "inputs": 2,
        "input_bytes": 3000,
        "partial_uploads": 1,
        "partial_bytes": 10,
    }
    assert "2 inputs (2.9 KiB), 1 partial uploads (10 B)" in _summary()


def test_the_summary_tells_the_age_of_the_oldest_waiting_task(monkeypatch):
    # A queue of its own (no worker takes from it), on the same MongoDB.
    broker = ForkSafeMongo(list_key=f"summary-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr("jobs.management.commands.jobs_summary.process_broker", lambda: broker)
    waiting = timezone.now() - timedelta(seconds=Conf.RETRY + 1)
    try:
        broker.collection.insert_one(
            {"_id": ObjectId.from_datetime(timezone.now() - timedelta(minutes=5)), "lock": waiting}
        )
        broker.enqueue("a newer task")
        broker.collection.insert_one({"payload": "delivered", "lock": timezone.now()})

        queue = json.loads(_summary("--json"))["queue"]

        assert (queue["waiting"], queue["in_flight"]) == (2, 1)
        assert 299 <= queue["oldest_waiting_seconds"] < 330
        assert "  2 waiting, 1 in flight; oldest waiting: 5m" in _summary()
    finally:
        broker.delete_queue()


def test_the_summary_peeks_at_a_redis_queue(monkeypatch):
    redis = pytest.importorskip("redis")
    from django_q.brokers.redis_broker import Redis
    from django_q.signing import SignedPackage

    broker = Redis(list_key=f"summary-test-{uuid.uuid4().hex[:8]}")
    try:
        broker.connection.ping()
    except redis.RedisError:
        pytest.skip("no Redis at the default address")
    monkeypatch.setattr("jobs.management.commands.jobs_summary.process_broker", lambda: broker)
    try:
        started = timezone.now() - timedelta(minutes=3)
        broker.enqueue(SignedPackage.dumps({"id": "x", "started": started}))
        broker.enqueue(SignedPackage.dumps({"id": "y", "started": timezone.now()}))

        queue = json.loads(_summary("--json"))["queue"]

        assert (queue["waiting"], queue["in_flight"]) == (2, None)
        assert 179 <= queue["oldest_waiting_seconds"] < 200
    finally:
        broker.delete_queue()


def test_the_summary_still_prints_when_the_broker_is_down(monkeypatch):
    class Down(Mongo):
        def __init__(self):
            pass

        def queue_size(self):
            raise ConnectionError("broker down")

    monkeypatch.setattr("jobs.management.commands.jobs_summary.process_broker", Down)

    assert "  unavailable: ConnectionError: broker down" in _summary()
