"""The FrontService stack the benchmarks start: every process on free ports, data in one dir.

Used by bench/e2e.py (one stack per input size) and bench/soak.py (one stack with two worker
clusters, tuned settings and the Redis broker as an option). Every process is a
ManagedProcess (its own session, its log under `<root>/logs/`) and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.processes import ManagedProcess, free_port  # noqa: E402

PYTHON = sys.executable


# --- process trees (/proc) -------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of `pid` (over all its threads: a child belongs to the forking thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """`pid` and everything below it."""
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo += children(current)
    return result


# --- the stack -------------------------------------------------------------------------------


def wait_for_port(process: ManagedProcess, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{process.name} did not listen on {port}\n{process.log_tail()}")


@dataclass
class Stack:
    """Every process of FrontService on free ports, with its data under `root`.

    `workers` names the django-q2 clusters (`manage.py worker`) to start, `settings` are extra
    environment variables for every process (they override the defaults below), and
    `job_delay` is JobService's `--delay`.
    """

    root: Path
    workers: tuple[str, ...] = ("worker",)
    settings: dict[str, str] = field(default_factory=dict)
    job_delay: float = 0
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    token: str = ""

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        self.ports = {name: free_port() for name in ("mongo", "blob", "job", "api")}
        self.env = {**self._environment(), **self.settings}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._start_mongo()
        self.manage("migrate", "--no-input")
        self._start(
            "blob",
            [
                "-m",
                "refservices.blobservice",
                "--port",
                str(self.ports["blob"]),
                "--data-dir",
                str(self.root / "blobservice"),
            ],
            ready=f"{self.url('blob')}/_control/health",
        )
        self.start_jobservice()
        for name in self.workers:
            self.start_worker(name)
        self._start(
            "api",
            [
                "-m",
                "gunicorn",
                "frontservice.wsgi",
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.ports['api']}",
            ],
            ready=f"{self.url('api')}/healthz",
        )
        self.token = self.manage("issue_token", "--tenant", "bench", "--sub", "bench").strip()

    def start_jobservice(self) -> ManagedProcess:
        """Start (or start again, on the same port and data) the reference JobService."""
        return self._start(
            "job",
            [
                "-m",
                "refservices.jobservice",
                "--port",
                str(self.ports["job"]),
                "--data-dir",
                str(self.root / "jobservice"),
                "--blobservice-url",
                self.url("blob"),
                "--delay",
                f"{self.job_delay:g}",
            ],
            ready=f"{self.url('job')}/_control/health",
        )

    def start_worker(self, name: str) -> ManagedProcess:
        """Start (or start again, under the same name) one django-q2 cluster."""
        return self._start(name, ["manage.py", "worker"])

    def stop(self) -> None:
        # Reverse start order: the API and workers go before the services they call.
        for name in reversed(list(self.processes)):
            self.processes.pop(name).stop()

    def roots(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def manage(self, *args: str, timeout: float | None = None) -> str:
        """Run `manage.py <args>` against this stack; its stdout (RuntimeError if it fails)."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            check=False,
            timeout=timeout,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def _environment(self) -> dict[str, str]:
        # Everything explicit: `make` exports MONGODB_URI and the service URLs of `make run`,
        # which must not leak into the bench stack.
        return {
            "DJANGO_SETTINGS_MODULE": "frontservice.settings",
            "MONGODB_URI": f"mongodb://127.0.0.1:{self.ports['mongo']}/?directConnection=true",
            "MONGODB_NAME": "frontservice_bench",
            "BLOBSERVICE_URL": self.url("blob"),
            "JOBSERVICE_URL": self.url("job"),
            "STAGING_DIR": str(self.root / "staging"),
            "FRONTSERVICE_VAR_DIR": str(self.root / "var"),
            "Q_CLUSTER_NAME": f"fs-bench-{uuid.uuid4().hex[:8]}",
            "Q_WORKERS": "2",
            "REDIS_URL": "",  # the default MongoDB broker, whatever the caller's environment
            "PYTHONUNBUFFERED": "1",
        }

    def _start_mongo(self) -> None:
        (self.root / "mongo").mkdir(parents=True, exist_ok=True)
        process = self._start(
            "mongo",
            [
                "-m",
                "frontservice.embedded_mongo",
                "--port",
                str(self.ports["mongo"]),
                "--path",
                str(self.root / "mongo" / "frontservice.sqlite3"),
            ],
        )
        wait_for_port(process, self.ports["mongo"])

    def _start(self, name: str, args: list[str], ready: str | None = None) -> ManagedProcess:
        process = ManagedProcess.start(
            [PYTHON, *args],
            env=self.env,
            cwd=str(REPO),
            name=name,
            ready_url=ready,
            log_dir=self.log_dir,
        )
        self.processes[name] = process
        return process
