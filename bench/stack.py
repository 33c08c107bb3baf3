"""The FrontService stack the benchmarks start: every process on free ports, data in one dir.

Used by bench/e2e.py (one stack per input size), bench/soak.py (one stack with two worker
clusters, tuned settings and the Redis broker as an option) and bench/outage.py. The processes,
their command lines and readiness checks are the launcher's (launcher/stack.py, as for `make
run`); this picks the ports and the benchmarks' settings. Every process is a ManagedProcess (its
own session, its log under `<root>/logs/`) and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from launcher import stack as launcher  # noqa: E402
from launcher.processes import ManagedProcess, free_port  # noqa: E402

PYTHON = launcher.PYTHON
__all__ = ["PYTHON", "Stack", "children", "descendants"]


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


class Stack:
    """Every process of FrontService on free ports, with its data under `root`.

    `workers` names the django-q2 clusters (`manage.py worker`) to start, `settings` are extra
    environment variables for every process (they override the defaults below), and
    `job_delay` is JobService's `--delay`.
    """

    def __init__(
        self,
        root: Path,
        workers: tuple[str, ...] = ("worker",),
        settings: dict[str, str] | None = None,
        job_delay: float = 0,
    ) -> None:
        self.root = root
        self.workers = workers
        self.settings = dict(settings or {})
        self.token = ""
        ports = {name: free_port() for name in ("mongo", "blob", "job", "api")}
        self.launched = launcher.Stack(
            data_dir=root, ports=ports, log_dir=root / "logs", job_delay=job_delay
        )
        self.launched.env = {**self._environment(), **self.settings}

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def ports(self) -> dict[str, int]:
        return self.launched.ports

    @property
    def env(self) -> dict[str, str]:
        return self.launched.env

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        return self.launched.processes

    def url(self, name: str) -> str:
        return self.launched.url(name)

    def start(self) -> None:
        self.launched.start_all(("mongo", "migrate", "blob", "job"))
        for name in self.workers:
            self.start_worker(name)
        self.launched.start("api")
        self.token = self.manage("issue_token", "--tenant", "bench", "--sub", "bench").strip()

    def start_jobservice(self) -> ManagedProcess:
        """Start (or start again, on the same port and data) the reference JobService."""
        return self.launched.start("job")

    def start_worker(self, name: str) -> ManagedProcess:
        """Start (or start again, under the same name) one django-q2 cluster, without waiting
        for it to run (a restart in the soak is timed from here)."""
        return self.launched.start(name, kind="worker", wait=False)

    def stop(self) -> None:
        self.launched.stop_all()

    def roots(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def manage(self, *args: str, timeout: float | None = None) -> str:
        """Run `manage.py <args>` against this stack; its stdout (RuntimeError if it fails)."""
        return self.launched.manage(*args, timeout=timeout)

    def _environment(self) -> dict[str, str]:
        # Everything explicit: `make` exports MONGODB_URI and the service URLs of `make run`,
        # which must not leak into the bench stack.
        return {
            "DJANGO_SETTINGS_MODULE": "frontservice.settings",
            **self.launched.addresses(),
            "MONGODB_NAME": "frontservice_bench",
            "STAGING_DIR": str(self.root / "staging"),
            "FRONTSERVICE_VAR_DIR": str(self.root / "var"),
            "Q_CLUSTER_NAME": f"fs-bench-{uuid.uuid4().hex[:8]}",
            "Q_WORKERS": "2",
            "REDIS_URL": "",  # the default MongoDB broker, whatever the caller's environment
            "PYTHONUNBUFFERED": "1",
        }
