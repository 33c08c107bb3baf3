"""The running stack for the end-to-end tests (tests/e2e): real processes on free ports.

The reference BlobService and JobService, the API under gunicorn and a django-q2 cluster, all on
the test database of the embedded MongoDB (tests/embedded_database.py). The processes, their
command lines and readiness checks are the launcher's (launcher/stack.py, as for `make run`);
this adds what the tests need: the services' fault and counter endpoints, and the test settings.
Every process is stopped by its PID, also when tests fail.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import requests

from launcher import stack as launcher
from launcher.processes import ManagedProcess, wait_for_log

__all__ = ["REPO", "Stack", "api_argv", "mongo_argv", "stack_env", "wait_for_log"]

REPO = launcher.REPO
# JobService's execution delay in tests: long enough to see SUBMITTED, short enough to be quick.
EXECUTION_DELAY = "0.3"
# UPLOAD_IDLE_TIMEOUT of the stack's API: a read from a client waits this long for a byte.
STALL_TIMEOUT = 3


class Stack(launcher.Stack):
    """The launcher's stack on the servers of `urls` (blob, job, api), with `env` for every
    process; `mongo_port` only for a stack with a database of its own."""

    def __init__(
        self, env: dict, data_dir: Path, urls: dict[str, str], mongo_port: int | None = None
    ) -> None:
        ports = {name: urlsplit(url).port for name, url in urls.items()}
        if mongo_port is not None:
            ports["mongo"] = mongo_port
        super().__init__(data_dir=data_dir, ports=ports, env=env, job_delay=float(EXECUTION_DELAY))
        if "api" in ports:
            self.argv["api"] = api_argv(ports["api"])

    @property
    def api(self) -> str:
        return self.urls["api"]

    @property
    def mongo_port(self) -> int | None:
        return self.ports.get("mongo")

    def start(self, name: str, **env_overrides: str) -> ManagedProcess:
        return super().start(name, env=env_overrides)

    @contextlib.contextmanager
    def worker_with(self, **settings: str) -> Iterator["Stack"]:
        """The worker restarted with these settings for the block, then the usual one again."""
        self.stop("worker")
        self.start("worker", **settings)
        try:
            yield self
        finally:
            self.stop("worker")
            self.start("worker")

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


# An embedded MongoDB of a test's own, on a SQLite file (so it survives a restart).
mongo_argv = launcher.mongo_argv


def api_argv(port: int) -> list[str]:
    # A short graceful stop, so that tests restarting the API do not wait gunicorn's 30 s.
    return [*launcher.api_argv(port), "--graceful-timeout", "5"]


def stack_env(db_name: str, urls: dict[str, str]) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="frontservice.settings",
        MONGODB_NAME=db_name,
        BLOBSERVICE_URL=urls["blob"],
        JOBSERVICE_URL=urls["job"],
        Q_WORKERS="2",
        # Short, so that the tests of stalled clients see their connections end in seconds.
        UPLOAD_IDLE_TIMEOUT=str(STALL_TIMEOUT),
        PYTHONUNBUFFERED="1",
    )
    return env
