"""The running stack for the end-to-end tests (tests/e2e): real processes on free ports.

The reference BlobService and JobService, the API under gunicorn and a django-q2 cluster, all on
the test database of the embedded MongoDB (tests/embedded_database.py). Every process is stopped
by its PID, also when tests fail.
"""

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.processes import ManagedProcess, wait_for_port

REPO = Path(__file__).resolve().parent.parent.parent
# JobService's execution delay in tests: long enough to see SUBMITTED, short enough to be quick.
EXECUTION_DELAY = "0.3"
# UPLOAD_IDLE_TIMEOUT of the stack's API: a read from a client waits this long for a byte.
STALL_TIMEOUT = 3


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
