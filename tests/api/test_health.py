"""/healthz and /readyz: public, JSON, 200 or 503, fast, and saying nothing about the network."""

import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import REPO, Stack, api_argv, mongo_argv
from tests.support.private_api import private_api
from tests.support.processes import free_port


def test_healthz_answers_200_without_a_token(stack):
    response = requests.get(f"{stack.api}/healthz", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_mongodb_and_the_broker_answer(stack):
    response = requests.get(f"{stack.api}/readyz", timeout=5)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"mongodb", "broker"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["ms"], int)


def test_readyz_checks_the_downstream_services_when_asked(stack):
    dead = f"http://127.0.0.1:{free_port()}"
    with private_api(stack, READYZ_CHECK_DOWNSTREAM="true", BLOBSERVICE_URL=dead) as api:
        response = requests.get(f"{api}/readyz", timeout=5)

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["jobservice"]["ok"] is True
    assert checks["blobservice"]["ok"] is False
    assert checks["blobservice"]["reason"] == "ConnectionError"
    assert "127.0.0.1" not in response.text


@pytest.fixture
def own_database_stack(stack, tmp_path):
    """An API on an embedded MongoDB of its own, which the test may stop (no worker needed)."""
    mongo_port, api_port = free_port(), free_port()
    env = {
        **stack.env,
        "MONGODB_URI": f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
        "MONGODB_NAME": "frontservice_readyz",
        "Q_CLUSTER_NAME": f"{stack.env['Q_CLUSTER_NAME']}-readyz",
    }
    urls = {**stack.urls, "api": f"http://127.0.0.1:{api_port}"}
    own = Stack(env=env, data_dir=tmp_path, urls=urls, mongo_port=mongo_port)
    own.argv = {
        "mongo": mongo_argv(mongo_port, tmp_path / "mongo.sqlite3"),
        "api": api_argv(api_port),
    }
    try:
        own.start("mongo")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        own.start("api")
        yield own
    finally:
        for process in list(own.processes.values()):
            process.stop()


def _readyz(stack) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(f"{stack.api}/readyz", timeout=10)
    return response, time.monotonic() - started


def test_readyz_answers_503_fast_while_mongodb_is_down_and_200_when_it_is_back(
    own_database_stack,
):
    stack = own_database_stack
    assert _readyz(stack)[0].status_code == 200

    stack.stop("mongo")
    try:
        down, seconds = _readyz(stack)
        alive = requests.get(f"{stack.api}/healthz", timeout=5)
    finally:
        stack.start("mongo")

    assert down.status_code == 503
    assert seconds < 3
    body = down.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["mongodb"]["ok"] is False
    assert body["checks"]["mongodb"]["reason"]
    # Only the kind of failure: no host, no port, no driver message.
    assert "127.0.0.1" not in down.text
    assert str(stack.mongo_port) not in down.text
    assert alive.status_code == 200  # liveness does not depend on the database

    deadline = time.monotonic() + 15
    while (back := _readyz(stack)[0]).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert back.status_code == 200, back.text
    assert back.json()["checks"]["mongodb"]["ok"] is True
