"""The service in the test process (most tests), the running stack (tests/e2e), and the people
who use them.

In-process tests (`api`, `services`): the API through DRF's test client, the worker's tasks run
in this process from the real broker (tests/support/inprocess.py), the reference BlobService and
JobService as real processes started once per session.

One session-scoped stack of real processes: the reference BlobService and JobService, the API
under gunicorn and a django-q2 cluster, all on free ports, all on the test database of the
embedded MongoDB (tests/embedded_database.py). Every process is stopped by its PID at the end,
also when tests fail. Tests talk HTTP to the API and read the stored state with the ORM.
"""

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.api import Owner
from tests.support.inprocess import Api, Downstream, clear_tasks
from tests.support.processes import ManagedProcess, free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent
# JobService's execution delay in tests: long enough to see SUBMITTED, short enough to be quick.
EXECUTION_DELAY = "0.3"


@dataclass
class Stack:
    env: dict
    data_dir: Path
    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    mongo_port: int | None = None  # only for a stack with a database of its own

    @property
    def api(self) -> str:
        return self.urls["api"]

    def start(self, name: str, **env_overrides: str) -> ManagedProcess:
        if name == "mongo":
            process = ManagedProcess.start(self.argv[name], env=self.env, cwd=str(REPO), name=name)
            wait_for_port(process, self.mongo_port)
            self.processes[name] = process
            return process
        ready_url = f"{self.urls[name]}/_control/health" if name in ("blob", "job") else None
        if name == "api":
            ready_url = f"{self.urls['api']}/healthz"
        process = ManagedProcess.start(
            self.argv[name],
            env={**self.env, **env_overrides},
            cwd=str(REPO),
            name=name,
            ready_url=ready_url,
        )
        self.processes[name] = process
        if name == "worker":
            wait_for_log(process, "running.")
        return process

    def stop(self, name: str) -> None:
        self.processes.pop(name).stop()

    def stats(self, name: str) -> dict:
        return requests.get(f"{self.urls[name]}/_control/stats", timeout=5).json()

    def faults(self, name: str, **faults) -> None:
        response = requests.post(f"{self.urls[name]}/_control/faults", json=faults, timeout=5)
        response.raise_for_status()

    def cancel_remote(self, job_id: str) -> None:
        """End a deliberately slow job in JobService so it does not hold up later tests."""
        requests.delete(f"{self.urls['job']}/jobs/{job_id}", timeout=5)

    def clear_faults(self) -> None:
        for name in ("blob", "job"):
            requests.delete(f"{self.urls[name]}/_control/faults", timeout=5).raise_for_status()


def wait_for_log(process: ManagedProcess, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log_path.read_text():
        assert process.alive, f"{process.name} exited\n{process.log_tail()}"
        assert time.monotonic() < deadline, f"{process.name}: no {text!r}\n{process.log_tail()}"
        time.sleep(0.05)


def mongo_argv(port: int, path: Path) -> list[str]:
    """An embedded MongoDB of a test's own, on a SQLite file (so it survives a restart)."""
    return [
        sys.executable,
        "-m",
        "frontservice.embedded_mongo",
        "--port",
        str(port),
        "--path",
        str(path),
    ]


def api_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "frontservice.wsgi",
        "--config",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
    ]


def _stack_env(db_name: str, urls: dict[str, str]) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="frontservice.settings",
        MONGODB_NAME=db_name,
        BLOBSERVICE_URL=urls["blob"],
        JOBSERVICE_URL=urls["job"],
        Q_WORKERS="2",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """The migrated test database, for every test.

    pytest-django creates it only for tests marked `django_db`, and that mark would also flush
    the database after each test (MongoDB has no transactions to roll back), under the running
    stack's feet. Tests here share one database and keep apart by their own owners instead.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings
    from django.db import connection

    data_dir = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("blob", "job", "api")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    stack = Stack(
        env=_stack_env(connection.settings_dict["NAME"], urls), data_dir=data_dir, urls=urls
    )
    # The test process itself (quiet_stack, the ORM assertions) talks to the same services.
    settings.BLOBSERVICE_URL, settings.JOBSERVICE_URL = urls["blob"], urls["job"]
    python = sys.executable
    stack.argv = {
        "blob": [
            python,
            "-m",
            "refservices.blobservice",
            "--port",
            str(ports["blob"]),
            "--data-dir",
            str(data_dir / "blobs"),
        ],
        "job": [
            python,
            "-m",
            "refservices.jobservice",
            "--port",
            str(ports["job"]),
            "--data-dir",
            str(data_dir / "jobs"),
            "--blobservice-url",
            urls["blob"],
            "--delay",
            EXECUTION_DELAY,
        ],
        "api": api_argv(ports["api"]),
        "worker": [python, "manage.py", "worker"],
    }
    try:
        for name in ("blob", "job", "api", "worker"):
            stack.start(name)
        yield stack
    finally:
        for process in list(stack.processes.values()):
            process.stop()


@pytest.fixture(autouse=True)
def _database_access(django_db_setup, django_db_blocker):
    # The stack shares the test database; tests read it as it is (no per-test transaction,
    # which MongoDB would ignore anyway). Isolation comes from each test's own owners.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def clean_downstream(stack):
    """Faults cleared before and after a test that injects them."""
    stack.clear_faults()
    # Counters start at zero, so a test's assertions on them see only its own traffic.
    for name in ("blob", "job"):
        requests.post(f"{stack.urls[name]}/_control/reset-stats", timeout=5).raise_for_status()
    yield stack
    stack.clear_faults()


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


@pytest.fixture
def quiet_stack(stack):
    """No orchestration in flight: every job created by earlier tests has left CREATED/STORED,
    and every SUBMITTED one has finished in JobService. Fault tests need that, or an earlier
    test's job could consume the fault they inject."""
    from jobs.models import Job
    from jobs.states import Status
    from orchestration.refresh import job_refresh

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = Job.objects.filter(status__in=[Status.CREATED, Status.STORED]).count()
        submitted = list(Job.objects.filter(status=Status.SUBMITTED))
        for job in submitted:
            job_refresh(job)
        if not busy and not Job.objects.filter(status=Status.SUBMITTED).exists():
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the stack did not settle within 60 s")
    stack.clear_faults()
    # Counters start at zero, so a test's assertions on them see only its own traffic.
    for name in ("blob", "job"):
        requests.post(f"{stack.urls[name]}/_control/reset-stats", timeout=5).raise_for_status()
    yield stack
    stack.clear_faults()


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
    yield downstream
    downstream.reset()


@pytest.fixture
def api(services) -> Api:
    """A user's HTTP client, answered in-process, with the reference services behind it."""
    return Api()
