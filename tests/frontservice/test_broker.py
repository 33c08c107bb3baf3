"""The MongoDB broker's delivery order and acknowledgement, on the embedded MongoDB."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from frontservice import broker as broker_module
from frontservice.broker import (
    JOBS,
    QUEUES,
    WEBHOOKS,
    ForkSafeMongo,
    acknowledge_in_worker,
    process_broker,
    queue_key,
    serve_queue,
)


@pytest.fixture
def broker(monkeypatch):
    # A queue of its own (no worker takes from it), on the same MongoDB.
    queue = ForkSafeMongo(list_key=f"broker-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(broker_module, "process_broker", lambda name="jobs": queue)
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


# --- the queues


def test_each_queue_has_a_broker_key_of_its_own_named_after_the_cluster():
    assert queue_key(JOBS) == Conf.CLUSTER_NAME  # the one queue's name before there were two
    assert queue_key(WEBHOOKS) == f"{Conf.CLUSTER_NAME}-webhooks"
    with pytest.raises(ValueError, match="unknown queue"):
        queue_key("other")


def test_with_mongodb_a_queue_is_a_collection_and_with_redis_a_list_of_its_own():
    mongo = {queue: ForkSafeMongo(list_key=queue_key(queue)) for queue in QUEUES}
    redis = {queue: Redis(list_key=queue_key(queue)) for queue in QUEUES}  # no I/O yet

    assert mongo[WEBHOOKS].collection.name == f"{Conf.CLUSTER_NAME}-webhooks"
    assert mongo[JOBS].collection.name == Conf.CLUSTER_NAME
    assert redis[WEBHOOKS].list_key == f"django_q:{Conf.CLUSTER_NAME}-webhooks:q"
    assert redis[JOBS].list_key == f"django_q:{Conf.CLUSTER_NAME}:q"


def test_this_process_has_one_broker_per_queue():
    assert process_broker(WEBHOOKS) is process_broker(WEBHOOKS)
    assert process_broker(JOBS) is process_broker()
    assert process_broker(WEBHOOKS).list_key != process_broker(JOBS).list_key
    assert "-webhooks" in process_broker(WEBHOOKS).list_key


def test_a_worker_of_the_webhooks_cluster_acknowledges_on_the_webhooks_queue(monkeypatch):
    queues = {q: ForkSafeMongo(list_key=f"broker-test-{q}-{uuid.uuid4().hex[:8]}") for q in QUEUES}
    monkeypatch.setattr(broker_module, "process_broker", lambda name=JOBS: queues[name])
    monkeypatch.setattr(broker_module, "_served_queue", JOBS)  # restored after the test
    delivery = queues[WEBHOOKS].enqueue("delivery")
    try:
        serve_queue(WEBHOOKS)  # as the webhooks cluster's sentinel does, for its workers

        acknowledge_in_worker(sender="django_q", task={"ack_id": delivery, "success": True})

        assert queues[WEBHOOKS].collection.count_documents({}) == 0
    finally:
        for queue in queues.values():
            queue.delete_queue()
