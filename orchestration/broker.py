"""django-q2 brokers, one instance per process.

django-q2's Mongo broker opens its MongoClient when constructed, in the cluster's parent
process, and then forks its pusher and monitor with that object. PyMongo clients must not be
carried across a fork, so ForkSafeMongo opens its client lazily, once per process id.
"""

import os

from django_q.brokers import Broker, get_broker
from django_q.brokers.mongo import Mongo
from django_q.conf import Conf
from pymongo import MongoClient


class ForkSafeMongo(Mongo):
    _client: MongoClient | None = None
    _client_pid: int | None = None

    @staticmethod
    def get_connection(list_key: str | None = None) -> None:
        return None  # opened on first use, in the process that uses it

    @property
    def connection(self) -> MongoClient:
        if self._client_pid != os.getpid():
            self._client = MongoClient(**Conf.MONGO)
            self._client_pid = os.getpid()
        return self._client

    @connection.setter
    def connection(self, value) -> None:
        # Broker.__init__ assigns get_connection()'s None; the property owns the client.
        pass

    @property
    def collection(self):
        return self.connection[Conf.MONGO_DB][self.list_key]

    @collection.setter
    def collection(self, value) -> None:
        pass


_brokers: dict[int, Broker] = {}


def process_broker() -> Broker:
    """One broker per process: django-q2's async_task would otherwise open a client per call."""
    pid = os.getpid()
    if pid not in _brokers:
        _brokers.clear()
        _brokers[pid] = get_broker()
    return _brokers[pid]
