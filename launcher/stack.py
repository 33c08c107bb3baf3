"""The processes of FrontService and how to start each one: the one table that `make run`
(launcher/__main__.py), the end-to-end tests (tests/support/stack.py) and the benchmarks
(bench/stack.py) start them from.

| name    | command                                    | ready when                           |
|---------|--------------------------------------------|--------------------------------------|
| mongo   | python -m frontservice.embedded_mongo      | it accepts TCP connections           |
| migrate | python manage.py migrate --no-input        | it has exited with 0 (one-shot)      |
| blob    | python -m refservices.blobservice          | GET /_control/health answers         |
| job     | python -m refservices.jobservice           | GET /_control/health answers         |
| worker  | python manage.py worker                    | its log says the cluster is running  |
| api     | gunicorn frontservice.wsgi                 | GET /healthz answers                 |

Every process is a ManagedProcess (launcher/processes.py): a session of its own, its output in a
log file, stopped by the PID started here. Nothing of the service is imported: each process is
known by its command line, its port and its readiness check (pyproject.toml's import contracts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from launcher.processes import ManagedProcess, ProcessStartError, wait_for_log, wait_for_port

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# The whole service, in the order it starts: each process needs the ones before it (the
# migration the database, JobService BlobService, the worker and the API all of them).
PROCESSES = ("mongo", "migrate", "blob", "job", "worker", "api")
# What `manage.py worker` logs once its cluster takes tasks (django-q2's "Q Cluster ... running.").
WORKER_RUNNING = "running."
# A migration of the embedded database takes seconds; this only bounds a hung one.
MIGRATE_TIMEOUT = 300


def mongo_argv(port: int, path: Path) -> list[str]:
    """The embedded MongoDB (mongoeco's wire server) on a SQLite file, so it survives a restart."""
    return [PYTHON, "-m", "frontservice.embedded_mongo", "--port", str(port), "--path", str(path)]


def migrate_argv() -> list[str]:
    return [PYTHON, "manage.py", "migrate", "--no-input"]


def blobservice_argv(port: int, data_dir: Path) -> list[str]:
    argv = [PYTHON, "-m", "refservices.blobservice", "--port", str(port)]
    return [*argv, "--data-dir", str(data_dir)]


def jobservice_argv(
    port: int, data_dir: Path, blobservice_url: str, delay: float | None = None
) -> list[str]:
    """The reference JobService; `delay` is its execution time per job (its own default if None)."""
    argv = [PYTHON, "-m", "refservices.jobservice", "--port", str(port), "--data-dir"]
    argv += [str(data_dir), "--blobservice-url", blobservice_url]
    return argv if delay is None else [*argv, "--delay", f"{delay:g}"]


def worker_argv() -> list[str]:
    return [PYTHON, "manage.py", "worker"]


def api_argv(port: int) -> list[str]:
    return [
        *(PYTHON, "-m", "gunicorn", "frontservice.wsgi", "--config", "gunicorn.conf.py"),
        *("--bind", f"127.0.0.1:{port}"),
    ]


class Stack:
    """FrontService's processes on loopback ports, their data under `data_dir`.

    `ports` names the port of each server to start (mongo, blob, job, api); a stack without
    "mongo" uses a database started elsewhere (the tests' session database). `env` is added to
    this process's environment for every process. Logs go to `log_dir` as `<name>-*.log`, one
    new file per start (None: one temp directory per run), or with `named_logs` as
    `<log_dir>/<name>.log`, emptied at each start (`make run`). `argv` holds each process's
    command line, from the functions above; change an entry before starting it to add options.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        ports: Mapping[str, int],
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        named_logs: bool = False,
        job_delay: float | None = None,
    ) -> None:
        if named_logs and log_dir is None:
            raise ValueError("named_logs needs a log_dir")
        self.data_dir = Path(data_dir)
        self.ports = dict(ports)
        self.env = dict(env or {})
        self.log_dir = log_dir
        self.named_logs = named_logs
        self.argv = self._default_argv(job_delay)
        self.processes: dict[str, ManagedProcess] = {}

    def _default_argv(self, job_delay: float | None) -> dict[str, list[str]]:
        argv = {"migrate": migrate_argv(), "worker": worker_argv()}
        if "mongo" in self.ports:
            path = self.data_dir / "mongo" / "frontservice.sqlite3"
            argv["mongo"] = mongo_argv(self.ports["mongo"], path)
        if "blob" in self.ports:
            argv["blob"] = blobservice_argv(self.ports["blob"], self.data_dir / "blobservice")
        if "job" in self.ports:
            blob_url = self.url("blob") if "blob" in self.ports else self.env["BLOBSERVICE_URL"]
            data = self.data_dir / "jobservice"
            argv["job"] = jobservice_argv(self.ports["job"], data, blob_url, job_delay)
        if "api" in self.ports:
            argv["api"] = api_argv(self.ports["api"])
        return argv

    # -- addresses

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def urls(self) -> dict[str, str]:
        """The HTTP servers' base URLs: blob, job, api (those this stack has a port for)."""
        return {name: self.url(name) for name in ("blob", "job", "api") if name in self.ports}

    def addresses(self) -> dict[str, str]:
        """The settings by which the processes find each other (and `make run`'s run file)."""
        found = {}
        if "mongo" in self.ports:
            port = self.ports["mongo"]
            found["MONGODB_URI"] = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        if "blob" in self.ports:
            found["BLOBSERVICE_URL"] = self.url("blob")
        if "job" in self.ports:
            found["JOBSERVICE_URL"] = self.url("job")
        return found

    # -- starting and stopping

    def start_all(self, names: Iterable[str] = PROCESSES) -> None:
        """Start `names` in order (the whole service by default), each once ready."""
        for name in names:
            if name == "migrate":
                self.run(name)
            else:
                self.start(name)

    def start(
        self,
        name: str,
        *,
        kind: str | None = None,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> ManagedProcess:
        """Start (or start again, under the same name) one process and wait until it is ready.

        `kind` is the process of the table it is, for a second one under another name (a
        benchmark's "cluster-b" is a worker); `env` is added to the stack's for this process
        only; `wait=False` returns at once. ProcessStartError (with the log's tail) if it exits
        or is not ready in time; it is killed then.
        """
        kind = kind or name
        process = ManagedProcess.start(
            self.argv[kind],
            env={**self.env, **(env or {})},
            cwd=str(REPO),
            name=name,
            **self._log(name),
        )
        if wait:
            try:
                self.wait_ready(kind, process)
            except BaseException:
                process.kill()
                raise
        self.processes[name] = process
        return process

    def run(self, name: str, timeout: float = MIGRATE_TIMEOUT) -> ManagedProcess:
        """Run a one-shot process of the table (the migration) to its end; ProcessStartError
        if it fails."""
        process = ManagedProcess.start(
            self.argv[name], env=self.env, cwd=str(REPO), name=name, **self._log(name)
        )
        code = process.wait(timeout)
        if code != 0:
            raise ProcessStartError(f"{name} exited with {code}\n{process.log_tail()}")
        return process

    def wait_ready(self, kind: str, process: ManagedProcess) -> None:
        if kind == "mongo":
            wait_for_port(process, self.ports["mongo"])
        elif kind in ("blob", "job"):
            process.wait_ready(f"{self.url(kind)}/_control/health")
        elif kind == "api":
            process.wait_ready(f"{self.url('api')}/healthz")
        elif kind == "worker":
            wait_for_log(process, WORKER_RUNNING)

    def stop(self, name: str, timeout: float = 10) -> int:
        """SIGTERM one process by its PID (SIGKILL after `timeout` seconds); its exit code."""
        return self.processes.pop(name).stop(timeout)

    def stop_all(self) -> None:
        # Reverse start order: the API and the workers go before the services they call.
        for name in reversed(list(self.processes)):
            self.stop(name)

    def exited(self) -> str | None:
        """The name of a process that has exited by itself, if any."""
        return next((name for name, p in self.processes.items() if not p.alive), None)

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

    def _log(self, name: str) -> dict:
        if self.named_logs:
            return {"log_path": self.log_dir / f"{name}.log"}
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        return {"log_dir": self.log_dir}
