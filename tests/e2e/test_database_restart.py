"""The database stopped and started again while jobs are in flight.

This test runs its own API and worker on their own embedded MongoDB, SQLite-backed so a restart
keeps the data (the session's database is in memory), and shares the reference services.
"""

import subprocess
import sys
import time

import pytest
import requests

from jobs import staging
from tests.support.processes import free_port
from tests.support.stack import REPO, Stack, api_argv, mongo_argv

# What the broker does here (delivery, redelivery, acknowledgement) differs between MongoDB
# and Redis: this file runs with each (make test-e2e, make test-e2e-redis).
pytestmark = pytest.mark.brokers

JOBS = 6


@pytest.fixture
def own_database_stack(stack, tmp_path):
    mongo_port, api_port = free_port(), free_port()
    urls = {**stack.urls, "api": f"http://127.0.0.1:{api_port}"}
    env = {
        **stack.env,
        "MONGODB_URI": f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
        "MONGODB_NAME": "frontservice_restart",
        # Fail fast while the database is down, so the API answers 503 quickly.
        "MONGODB_SERVER_SELECTION_TIMEOUT_MS": "1500",
        "Q_CLUSTER_NAME": f"{stack.env['Q_CLUSTER_NAME']}-restart",
    }
    own = Stack(env=env, data_dir=tmp_path, urls=urls, mongo_port=mongo_port)
    python = sys.executable
    own.argv = {
        "mongo": mongo_argv(mongo_port, tmp_path / "mongo.sqlite3"),
        "api": api_argv(api_port),
        "worker": stack.argv["worker"],
    }
    try:
        own.start("mongo")
        subprocess.run(
            [python, "manage.py", "migrate", "--no-input"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        own.start("api")
        own.start("worker")
        yield own
    finally:
        for process in list(own.processes.values()):
            process.stop()


def _post(stack, owner, data: bytes) -> requests.Response:
    return requests.post(f"{stack.api}/api/v1/job", data=data, headers=owner.headers, timeout=30)


def _status(stack, owner, job_id) -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/job/{job_id}/status", headers=owner.headers, timeout=30
    )


def test_jobs_survive_a_database_restart_and_the_api_answers_503_meanwhile(
    own_database_stack, alice
):
    stack = own_database_stack
    stack.faults("job", execution_delay=1.0)  # some jobs still running in JobService
    job_ids = []
    for n in range(JOBS):
        response = _post(stack, alice, f"job {n} in flight".encode())
        assert response.status_code == 202
        job_ids.append(response.json()["id"])

    stack.stop("mongo")
    try:
        down_status = _status(stack, alice, job_ids[0])
        down_post = _post(stack, alice, b"while the database is down")
        staged_while_down = sorted(p.name for p in (staging.staging_root() / "tmp").iterdir())
    finally:
        stack.start("mongo")
    stack.clear_faults()

    for response in (down_status, down_post):
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "database_unavailable"
    assert staged_while_down == []
    # Tasks that failed on the database are picked up again by the reconciler.
    subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--stuck-after", "0"],
        env=stack.env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 60
    final = {}
    while len(final) < JOBS and time.monotonic() < deadline:
        for job_id in job_ids:
            response = _status(stack, alice, job_id)
            if response.status_code == 200 and response.json()["status"] == "EXECUTION_COMPLETED":
                final[job_id] = True
        time.sleep(0.3)
    assert len(final) == JOBS, f"{JOBS - len(final)} jobs did not complete after the restart"
    for n, job_id in enumerate(job_ids):
        output = requests.get(
            f"{stack.api}/api/v1/job/{job_id}/output", headers=alice.headers, timeout=30
        )
        assert output.content == f"JOB {n} IN FLIGHT".encode()
        assert stack.stats("job")["executions"][job_id] == 1
