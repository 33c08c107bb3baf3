"""/healthz and /readyz (frontservice/health.py): public, JSON, 200 or 503, fast, and saying
nothing about the network. In-process; a dependency that is down is an address nothing listens
on, and one that comes back is a real server started on that address."""

import contextlib
import sys
import time

import pytest
from django.db import connection

from tests.support.processes import ManagedProcess, free_port, wait_for_port


def test_healthz_answers_200_without_a_token(api):
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_mongodb_and_the_broker_answer(api):
    response = api.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"mongodb", "broker"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["ms"], int)


def test_readyz_checks_the_downstream_services_when_asked(api, settings):
    settings.READYZ_CHECK_DOWNSTREAM = True
    settings.BLOBSERVICE_URL = f"http://127.0.0.1:{free_port()}"

    response = api.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["jobservice"]["ok"] is True
    assert checks["blobservice"]["ok"] is False
    assert checks["blobservice"]["reason"] == "ConnectionError"
    assert "127.0.0.1" not in response.content.decode()


def _readyz(api):
    started = time.monotonic()
    response = api.get("/readyz")
    return response, time.monotonic() - started


def test_readyz_answers_503_fast_while_mongodb_is_down_and_200_when_it_is_back(
    api, settings, tmp_path
):
    assert _readyz(api)[0].status_code == 200
    # MongoDB is down: nothing listens on its address.
    mongo_port = free_port()
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true"

    down, seconds = _readyz(api)
    # Liveness does not depend on the database: it answers with the database down for Django
    # too (a request that touched it would fail).
    with _database_down_for_django():
        alive = api.get("/healthz")

    assert down.status_code == 503
    # Within READYZ_TIMEOUT_SECONDS (1 s), not the driver's 30 s: a prober is still waiting.
    assert seconds < 3
    body = down.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["mongodb"]["ok"] is False
    assert body["checks"]["mongodb"]["reason"]
    # Only the kind of failure: no host, no port, no driver message.
    text = down.content.decode()
    assert "127.0.0.1" not in text
    assert str(mongo_port) not in text
    assert alive.status_code == 200

    # MongoDB comes back on the same address: the same probe is ready again.
    mongo = ManagedProcess.start(
        [
            sys.executable,
            "-m",
            "frontservice.embedded_mongo",
            "--memory",
            "--port",
            str(mongo_port),
        ],
        name="mongodb-readyz",
        log_dir=tmp_path,
    )
    try:
        wait_for_port(mongo, mongo_port)
        deadline = time.monotonic() + 15
        while (back := _readyz(api)[0]).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        mongo.stop()
    assert back.status_code == 200, back.content
    assert back.json()["checks"]["mongodb"]["ok"] is True


@contextlib.contextmanager
def _database_down_for_django():
    """Every use of Django's database connection (the ORM's and frontservice.mongo's, which
    both take their collections from it) fails, as while the server is down."""

    def down(*args, **kwargs):
        raise ConnectionError("the database is down")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection, "get_collection", down)
        yield


@pytest.fixture(autouse=True)
def _no_cached_clients_across_tests():
    """The checks keep one client per URI; a test's made-up address must not outlive it."""
    from frontservice import health

    known = set(health._clients)
    yield
    for key in set(health._clients) - known:
        health._clients.pop(key).close()
