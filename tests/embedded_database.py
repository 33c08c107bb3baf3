"""pytest plugin: the embedded MongoDB (in memory) for the whole test session.

Loaded with ``-p`` (pytest.ini) so that it runs before pytest-django imports the settings: the
settings read MONGODB_URI once, at import. The server is a real process speaking the MongoDB
protocol; it is stopped by its PID when the session ends, also when tests fail.
Set TEST_MONGODB_URI to run the suite against another MongoDB instead.
"""

import os
import sys
import tempfile
import uuid

import pytest

from tests.support.processes import ManagedProcess, free_port, wait_for_port

_server: ManagedProcess | None = None

TEST_SETTINGS = {
    # The test database's name is the configured name, so every process of the stack and the
    # test process itself (django-q2's broker reads MONGODB_NAME too) use the same database.
    "MONGODB_NAME": "frontservice_test",
    "MONGODB_TEST_NAME": "frontservice_test",
    "DOWNSTREAM_READ_TIMEOUT": "3",
    "DOWNSTREAM_RETRY_BASE": "0.1",
    "DOWNSTREAM_RETRY_CAP": "1",
    # A step gives up after 3 s of transient failures; an open circuit probes twice a second.
    "DOWNSTREAM_RETRY_HORIZON": "3",
    "CIRCUIT_PROBE_INTERVAL": "0.5",
    "DISPATCH_INTERVAL_SECONDS": "0.2",
    "ORCHESTRATION_MAX_ATTEMPTS": "3",
    "Q_TIMEOUT": "15",
    "Q_RETRY": "16",
    "Q_STOP_GRACE": "5",
    # A supervised cluster that keeps being restarted (the supervision tests kill one child after
    # another) waits at most this long before its next start, well inside the tests' waits.
    "WORKER_STALL_SECONDS": "8",
    # The cluster's scheduled reconciler must not race the tests that run passes themselves
    # (with explicit thresholds) over jobs they made look stuck.
    "RECONCILE_STUCK_AFTER": "864000",
    "RECONCILE_REFRESH_AFTER": "864000",
    # Webhooks (tests/webhooks/): the tests' receiver listens on 127.0.0.1, which the
    # SSRF guard refuses unless allow-listed; every other non-public address stays refused.
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    # One tenant with a secret of its own, one in the middle of a rotation (new, old).
    "WEBHOOK_TENANT_SECRETS": (
        '{"webhook-tenant-with-own-secret": "tenant-secret-for-tests",'
        ' "webhook-tenant-rotating": ["new-secret-for-tests", "old-secret-for-tests"]}'
    ),
    "WEBHOOK_RETRY_BASE": "0.05",
    "WEBHOOK_RETRY_CAP": "0.2",
    "WEBHOOK_RETRY_HORIZON": "3",
    "WEBHOOK_DNS_TIMEOUT": "1",
    "WEBHOOK_CONNECT_TIMEOUT": "1",
    "WEBHOOK_READ_TIMEOUT": "2",
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    global _server
    if _distributes_to_workers(early_config):
        # pytest-xdist's controller runs no test: each worker (a pytest session of its own)
        # starts its own server, staging area and queue below, so workers never share state.
        return (yield)
    work_dir = tempfile.mkdtemp(prefix="frontservice-tests-")
    os.environ.setdefault("FRONTSERVICE_VAR_DIR", work_dir)
    os.environ.setdefault("STAGING_DIR", os.path.join(work_dir, "staging"))
    # One host's metrics directory, shared by the stack's API and workers and the test process
    # (frontservice/metrics.py), empty at the start of every run.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(work_dir, "metrics"))
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    # A cluster (queue) name of its own, so a run never takes another run's tasks from Redis.
    os.environ.setdefault("Q_CLUSTER_NAME", f"fs-test-{uuid.uuid4().hex[:8]}")
    # Small numbers, so the fault tests see retries, give-ups and redeliveries quickly. Set here,
    # before the settings load, so the test process and the stack it starts agree on them.
    for name, value in TEST_SETTINGS.items():
        os.environ.setdefault(name, value)
    if os.environ.get("TEST_BROKER") == "redis":
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    if os.environ.get("TEST_MONGODB_URI"):
        os.environ["MONGODB_URI"] = os.environ["TEST_MONGODB_URI"]
    else:
        port = free_port()
        _server = ManagedProcess.start(
            [sys.executable, "-m", "frontservice.embedded_mongo", "--memory", "--port", str(port)],
            name="mongodb",
        )
        wait_for_port(_server, port)
        os.environ["MONGODB_URI"] = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    return (yield)


def _distributes_to_workers(early_config) -> bool:
    """This process is pytest-xdist's controller (`-n N`), not one of its workers."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    workers = getattr(early_config.known_args_namespace, "numprocesses", None)
    return bool(workers) and workers != "0"


def pytest_unconfigure(config):
    if _server is not None:
        _server.stop()
