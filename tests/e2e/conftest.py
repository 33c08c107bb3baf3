"""The end-to-end suite: the running stack (tests/support/stack.py) and its fixtures.

It runs in a pytest session of its own (`pytest tests/e2e`; pytest.ini keeps it out of a plain
`pytest`): the stack's cluster takes tasks off the same broker queue that the in-process tests
drain with run_tasks(), so the two kinds of test cannot share a session.
"""

import time

import pytest
import requests

from tests.support.processes import free_port
from tests.support.stack import Stack, stack_env


def pytest_collection_modifyitems(session, config, items):
    outside = [item.nodeid for item in items if not item.nodeid.startswith("tests/e2e/")]
    if outside:
        raise pytest.UsageError(
            "tests/e2e runs in a session of its own (make test-e2e): its cluster would take the "
            f"tasks of in-process tests such as {outside[0]}"
        )


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings
    from django.db import connection

    data_dir = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("blob", "job", "api")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # The processes' command lines are the launcher's (launcher/stack.py), as for `make run`.
    stack = Stack(
        env=stack_env(connection.settings_dict["NAME"], urls), data_dir=data_dir, urls=urls
    )
    # The test process itself (quiet_stack, the ORM assertions) talks to the same services.
    settings.BLOBSERVICE_URL, settings.JOBSERVICE_URL = urls["blob"], urls["job"]
    try:
        for name in ("blob", "job", "api", "worker"):
            stack.start(name)
        yield stack
    finally:
        for process in list(stack.processes.values()):
            process.stop()


@pytest.fixture
def clean_downstream(stack):
    """Faults cleared before and after a test that injects them."""
    stack.clear_faults()
    # Counters start at zero, so a test's assertions on them see only its own traffic.
    for name in ("blob", "job"):
        requests.post(f"{stack.urls[name]}/_control/reset-stats", timeout=5).raise_for_status()
    yield stack
    stack.clear_faults()


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
