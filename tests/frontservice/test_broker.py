"""The MongoDB broker's delivery order and acknowledgement, on the embedded MongoDB."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf

from frontservice import broker as broker_module
from frontservice.broker import ForkSafeMongo, acknowledge_in_worker


@pytest.fixture
def broker(monkeypatch):
    # A queue of its own (no worker takes from it), on the same MongoDB.
    queue = ForkSafeMongo(list_key=f"broker-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(broker_module, "process_broker", lambda: queue)
    yield queue
    queue.delete_queue()


def _deliverable_since(seconds: float):
    """A `lock` that made a task deliverable `seconds` ago."""
    return timezone.now() - timedelta(seconds=Conf.RETRY + seconds)


def test_the_task_deliverable_longest_is_delivered_first(broker):
    # Inserted first, so an unsorted find takes it first: a task delivered before, whose
    # worker died, deliverable again for 10 s ...
    broker.collection.insert_one({"payload": "redelivery", "lock": _deliverable_since(10)})
    # ... and one never delivered, waiting for 60 s.
    broker.collection.insert_one({"payload": "never delivered", "lock": _deliverable_since(60)})
    broker.collection.insert_one({"payload": "in flight", "lock": timezone.now()})

    order = [broker.dequeue()[0][1] for _ in range(2)]

    assert order == ["never delivered", "redelivery"]
    assert broker.dequeue() is None  # the one in flight is not deliverable
    assert broker.lock_size() == 3


def test_the_queue_is_indexed_on_lock(broker):
    broker.enqueue("task")

    keys = [index["key"] for index in broker.collection.list_indexes()]

    assert {"lock": 1} in [dict(key) for key in keys]


def test_a_finished_task_is_acknowledged_by_its_worker(broker):
    ack_id = broker.enqueue("task")

    acknowledge_in_worker(sender="django_q", task={"ack_id": ack_id, "success": True})

    assert broker.collection.count_documents({}) == 0


def test_a_failed_task_is_acknowledged_only_when_failures_are(broker):
    kept, acked = broker.enqueue("kept"), broker.enqueue("acked")

    acknowledge_in_worker(sender="django_q", task={"ack_id": kept, "success": False})
    acknowledge_in_worker(
        sender="django_q", task={"ack_id": acked, "success": False, "ack_failure": True}
    )

    assert [task["payload"] for task in broker.collection.find()] == ["kept"]


def test_a_failed_acknowledgement_leaves_it_to_the_monitor(broker, monkeypatch, caplog):
    def down(task_id):
        raise ConnectionError("database down")

    monkeypatch.setattr(broker, "acknowledge", down)

    acknowledge_in_worker(sender="django_q", task={"ack_id": "x", "success": True})

    assert "acknowledgement in the worker failed" in caplog.text
