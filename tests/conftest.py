"""The service in the test process, and the people who use it.

In-process tests (`api`, `services`): the API through DRF's test client, the worker's tasks run
in this process from the real broker (tests/support/inprocess.py), the reference BlobService and
JobService as real processes started once per session.
The end-to-end suite's running stack is in tests/e2e/conftest.py. Both share the owners and
the session's test database (tests/embedded_database.py).
"""

import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.api import Owner
from tests.support.inprocess import Api, Downstream, clear_circuits, clear_tasks
from tests.support.processes import ManagedProcess, free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """The migrated test database, for every test.

    pytest-django creates it only for tests marked `django_db`, and that mark would also flush
    the database after each test (MongoDB has no transactions to roll back), under the feet of
    the processes that share it. Tests share one database and keep apart by their own owners.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture(autouse=True)
def _database_access(django_db_setup, django_db_blocker):
    # The stack shares the test database; tests read it as it is (no per-test transaction,
    # which MongoDB would ignore anyway). Isolation comes from each test's own owners.
    with django_db_blocker.unblock():
        yield


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tenant() -> str:
    return _unique("acme")


@pytest.fixture
def alice(tenant) -> Owner:
    return Owner(tenant_id=tenant, sub=_unique("alice"))


@pytest.fixture
def bob(tenant) -> Owner:
    """Alice's colleague: same tenant, another user."""
    return Owner(tenant_id=tenant, sub=_unique("bob"))


@pytest.fixture
def mallory(alice) -> Owner:
    """Same sub as alice, another tenant."""
    return Owner(tenant_id=_unique("evil"), sub=alice.sub)


# JobService's execution delay for in-process tests: a job is done soon after it is submitted.
# A test that needs to see SUBMITTED (or to cancel in time) injects a longer one.
INPROCESS_EXECUTION_DELAY = "0.05"


@pytest.fixture(scope="session")
def downstream(django_db_setup, tmp_path_factory):
    """The reference BlobService and JobService for in-process tests, one pair per session."""
    from django.conf import settings

    data_dir = tmp_path_factory.mktemp("downstream")
    ports = {name: free_port() for name in ("blob", "job")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    python = sys.executable
    argv = {
        "blob": [python, "-m", "refservices.blobservice", "--port", str(ports["blob"])],
        "job": [
            python,
            "-m",
            "refservices.jobservice",
            "--port",
            str(ports["job"]),
            "--blobservice-url",
            urls["blob"],
            "--delay",
            INPROCESS_EXECUTION_DELAY,
        ],
    }
    processes = []
    try:
        for name in ("blob", "job"):
            processes.append(
                ManagedProcess.start(
                    [*argv[name], "--data-dir", str(data_dir / name)],
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    cwd=str(REPO),
                    name=f"{name}service",
                    ready_url=f"{urls[name]}/_control/health",
                )
            )
        settings.BLOBSERVICE_URL, settings.JOBSERVICE_URL = urls["blob"], urls["job"]
        yield Downstream(urls=urls)
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
def services(downstream):
    """The reference services with no fault and fresh counters, and no task left over from an
    earlier test on the broker: what this test's jobs do is all that happens."""
    downstream.reset()
    clear_tasks()
    clear_circuits()
    yield downstream
    downstream.reset()


@pytest.fixture
def api(services) -> Api:
    """A user's HTTP client, answered in-process, with the reference services behind it."""
    return Api()
