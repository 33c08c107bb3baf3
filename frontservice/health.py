"""Health endpoints: /healthz (the process answers) and /readyz (its dependencies answer).

Both are public, like a load balancer's probe needs them, so they say little: ok or not, how
long each check took, and for a failure only the kind of error, never a host, a port or an
error's text.

The checks use clients of their own with a short timeout (READYZ_TIMEOUT_SECONDS), not the
application's: Django's database connection waits MONGODB_SERVER_SELECTION_TIMEOUT_MS (5 s)
for an unreachable server and django-q2's broker clients PyMongo's 30 s default, and a probe
must answer before the prober gives up. They run at the same time, so a request takes about
one timeout at worst.
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from django.conf import settings
from django.http import JsonResponse
from django_q.conf import Conf

from frontservice.broker import JOBS, process_broker


def healthz(request):
    """Liveness: the process answers. Touches no dependency on purpose."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: MongoDB, the broker and (READYZ_CHECK_DOWNSTREAM) the downstream services."""
    checks = {"mongodb": check_mongodb, "broker": check_broker}
    if settings.READYZ_CHECK_DOWNSTREAM:
        checks["blobservice"] = lambda: check_http(settings.BLOBSERVICE_URL)
        checks["jobservice"] = lambda: check_http(settings.JOBSERVICE_URL)
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
        results = {name: future.result() for name, future in futures.items()}
    ready = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
        result = {"ok": True}
    except Exception as exc:
        # The kind of failure only: the text of a connection error names the host and port.
        result = {"ok": False, "reason": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - started) * 1000)
    return result


def check_mongodb() -> None:
    mongo_client(settings.MONGODB_URI).admin.command("ping", maxTimeMS=_timeout_ms())


def check_broker() -> None:
    if settings.REDIS_URL:
        redis_client(settings.REDIS_URL).ping()
    else:
        # The MongoDB broker's own ping() is always True (it tests a method for None): ask the
        # server behind it instead.
        mongo_client(_broker_mongo_uri()).admin.command("ping", maxTimeMS=_timeout_ms())


def check_http(base_url: str) -> None:
    """Any HTTP answer means the service is reachable; only a transport failure is not."""
    import requests

    requests.get(base_url, timeout=settings.READYZ_TIMEOUT_SECONDS, allow_redirects=False)


def queue_stats(queue: str = JOBS) -> dict:
    """A broker queue (frontservice.broker.QUEUES): waiting tasks, and for MongoDB those in
    flight and the oldest's age."""
    list_key = process_broker(queue).list_key  # constructing a broker does no I/O
    if settings.REDIS_URL:
        return {"depth": redis_client(settings.REDIS_URL).llen(list_key)}
    queue = mongo_client(_broker_mongo_uri())[Conf.MONGO_DB][list_key]
    # django-q2's MongoDB broker: a task is waiting while its lock is older than `retry`.
    cutoff = datetime.now(UTC).timestamp() - Conf.RETRY
    waiting = {"lock": {"$lte": datetime.fromtimestamp(cutoff, UTC)}}
    limit = {"maxTimeMS": _timeout_ms()}
    depth = queue.count_documents(waiting, **limit)
    in_flight = queue.count_documents(
        {"lock": {"$gt": datetime.fromtimestamp(cutoff, UTC)}}, **limit
    )
    oldest = queue.find_one(waiting, {"_id": 1}, sort=[("_id", 1)], max_time_ms=_timeout_ms())
    age = 0.0
    if oldest is not None:
        age = max(0.0, time.time() - oldest["_id"].generation_time.timestamp())
    return {"depth": depth, "in_flight": in_flight, "oldest_age_seconds": age}


def _broker_mongo_uri() -> str:
    return settings.Q_CLUSTER["mongo"]["host"]


def _timeout_ms() -> int:
    return int(settings.READYZ_TIMEOUT_SECONDS * 1000)


# One client per URI and process: PyMongo and redis-py clients must not cross a fork.
_clients: dict = {}
_clients_lock = threading.Lock()


def _cached(kind: str, url: str, make):
    key = (kind, url, os.getpid())
    with _clients_lock:
        if key not in _clients:
            _clients[key] = make()
        return _clients[key]


def mongo_client(uri: str):
    from pymongo import MongoClient

    ms = _timeout_ms()
    return _cached(
        "mongo",
        uri,
        lambda: MongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
        ),
    )


def redis_client(url: str):
    import redis

    seconds = settings.READYZ_TIMEOUT_SECONDS
    return _cached(
        "redis",
        url,
        lambda: redis.Redis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds),
    )
