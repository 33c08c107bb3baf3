"""frontservice/queue.py: the task on the broker is django-q2's own, as async_task makes it."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from frontservice import queue as queue_module
from frontservice.broker import ForkSafeMongo

FUNC = "orchestration.tasks.orchestrate_job_task"


@pytest.fixture
def broker(monkeypatch):
    # A queue of its own (no worker takes from it), on the same MongoDB.
    queue = ForkSafeMongo(list_key=f"queue-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(queue_module, "process_broker", lambda name="jobs": queue)
    yield queue
    queue.delete_queue()


def _dequeued(broker) -> dict:
    [(_, payload)] = broker.dequeue()
    return SignedPackage.loads(payload)  # checks the signature, as a worker does


def test_a_task_is_the_package_async_task_makes(broker):
    job_id = uuid.uuid4()
    async_task(
        FUNC, str(job_id), task_name=f"orchestrate-{job_id}", group="orchestrate", broker=broker
    )
    theirs = _dequeued(broker)

    assert queue_module.enqueue_task(FUNC, job_id, group="orchestrate", if_failed="lost")
    ours = _dequeued(broker)

    # The same keys in the same order; the same values but the task's own id and time.
    assert list(ours) == list(theirs)
    assert {k: v for k, v in ours.items() if k not in ("id", "started")} == {
        k: v for k, v in theirs.items() if k not in ("id", "started")
    }
    assert ours["id"] != theirs["id"] and len(ours["id"]) == len(theirs["id"]) == 32
    assert timedelta(0) <= timezone.now() - ours["started"] < timedelta(seconds=30)
