"""django-q2 brokers, one instance per process, and acknowledgement in the worker.

django-q2's Mongo broker opens its MongoClient when constructed, in the cluster's parent
process, and then forks its pusher and monitor with that object. PyMongo clients must not be
carried across a fork, so ForkSafeMongo opens its client lazily, once per process id, and
`forget_inherited_mongo_clients` makes Django's own connections do the same after a fork.
"""

import logging
import os
from time import sleep

from django.db import connections
from django.utils import timezone
from django_mongodb_backend.base import DatabaseWrapper
from django_q.brokers import Broker, get_broker
from django_q.brokers.mongo import Mongo, _timeout
from django_q.conf import Conf
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection

logger = logging.getLogger(__name__)


class ForkSafeMongo(Mongo):
    _client: MongoClient | None = None
    _client_pid: int | None = None
    _collection: Collection | None = None

    @staticmethod
    def get_connection(list_key: str | None = None) -> None:
        return None  # opened on first use, in the process that uses it

    @property
    def connection(self) -> MongoClient:
        if self._client_pid != os.getpid():
            self._open()
        return self._client

    @connection.setter
    def connection(self, value) -> None:
        # Broker.__init__ assigns get_connection()'s None; the property owns the client.
        pass

    @property
    def collection(self) -> Collection:
        if self._client_pid != os.getpid():
            self._open()
        return self._collection

    @collection.setter
    def collection(self, value) -> None:
        pass

    def _open(self) -> None:
        """This process's client, and the queue's collection made once with it: every POST
        enqueues a task, and making a Collection (and its Database) for each was a tenth of
        the enqueue's own Python time."""
        self._client = MongoClient(**Conf.MONGO)
        self._client_pid = os.getpid()
        self._collection = self._client[Conf.MONGO_DB][self.list_key]
        # dequeue sorts on `lock`; without the index every dequeue scans the queue.
        # create_index is a no-op when the index exists.
        self._collection.create_index([("lock", ASCENDING)])

    def dequeue(self):
        """The task that became deliverable first (django-q2's own takes any of them).

        A task is deliverable when its `lock` is older than `retry` seconds: a new task is
        enqueued with such a lock, and a delivered one's lock is its delivery time. Taking the
        oldest lock first is first-come-first-served; django-q2's unsorted find_one_and_update
        took whatever the server found first, and tasks redelivered again and again after killed
        workers starved tasks never delivered at all.
        """
        task = self.collection.find_one_and_update(
            {"lock": {"$lte": _timeout()}},
            {"$set": {"lock": timezone.now()}},
            sort=[("lock", ASCENDING)],
        )
        if task:
            return [(str(task["_id"]), task["payload"])]
        sleep(Conf.POLL)  # empty queue: spare the CPU, as django-q2 does
        return None


# The queues, each taken by clusters of its own (`manage.py worker --queue`): webhook deliveries
# wait on a receiver for up to their timeouts, and on a queue apart no receiver, however slow,
# holds a worker that a job's step needs.
JOBS, WEBHOOKS = "jobs", "webhooks"
QUEUES = (JOBS, WEBHOOKS)


def queue_key(queue: str) -> str:
    """The broker's name for a queue (django-q2's list_key; MongoDB: the collection, Redis: the
    list `django_q:<key>:q`). The jobs queue keeps the cluster's own name (Q_CLUSTER_NAME), so
    tasks queued before there were two queues are still taken; the webhooks queue is
    `<name>-webhooks`."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")
    return Conf.CLUSTER_NAME if queue == JOBS else f"{Conf.CLUSTER_NAME}-{queue}"


_brokers: dict[tuple[int, str], Broker] = {}
# The queue whose tasks this process's cluster takes: set by its sentinel, inherited by the
# workers it forks (django-q2's pusher stamps every task with one cluster name for all queues).
_served_queue = JOBS


def serve_queue(queue: str) -> None:
    """This process, and those it forks, take the tasks of `queue` (a cluster's sentinel)."""
    global _served_queue
    queue_key(queue)  # a known queue, or ValueError
    _served_queue = queue


def process_broker(queue: str = JOBS) -> Broker:
    """This process's broker for a queue, one per queue and process: django-q2's async_task would
    otherwise open a client per call, and a client must not cross a fork."""
    key = (os.getpid(), queue)
    if key not in _brokers:
        if any(pid != key[0] for pid, _ in _brokers):
            _brokers.clear()  # inherited across a fork: the parent's
        _brokers[key] = get_broker(queue_key(queue))
    return _brokers[key]


def acknowledge_in_worker(sender, task: dict, **kwargs) -> None:
    """Acknowledge a finished task from the worker that ran it (django-q2's
    post_execute_in_worker signal).

    django-q2 acknowledges in its monitor process, after saving the result. When the cluster
    is killed between the task's end and that save, the finished task is delivered again
    `retry` seconds later, and under repeated kills most deliveries are never acknowledged.
    Our tasks record their outcome on the job themselves, so the
    task is done when its function returns. The monitor still acknowledges too (deleting a
    deleted receipt is harmless), and if this fails the monitor's is the fallback. Brokers
    without receipts (Redis) acknowledge with a no-op.
    """
    ack_id = task.get("ack_id")
    if not ack_id or not (task.get("success") or task.get("ack_failure", False)):
        return
    try:
        process_broker(_served_queue).acknowledge(ack_id)
    except Exception:
        logger.warning("task %s: acknowledgement in the worker failed", ack_id, exc_info=True)


def forget_inherited_mongo_clients() -> None:
    """After a fork: drop the parent's PyMongo clients, so this process opens its own on first
    use (a PyMongo client must not be used across a fork, and django-q2 forks its workers)."""
    for conn in connections.all(initialized_only=True):
        if isinstance(conn, DatabaseWrapper):
            conn.connection = None
            conn.__dict__.pop("database", None)
    # Dropped, not closed: closing would touch sockets the parent process still uses.
    DatabaseWrapper._connection_pools.clear()
