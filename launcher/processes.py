"""Start and stop real processes without leaking any: the launcher's (launcher/stack.py), the
tests' and the benchmarks' one way to run a child process.

In pytest, use it in fixtures with ``yield`` and ``finally`` (or as a context manager) so the
process is stopped even when the test fails::

    @pytest.fixture
    def blobservice(tmp_path):
        port = free_port()
        process = ManagedProcess.start(
            [sys.executable, "-m", "refservices.blobservice", "--port", str(port),
             "--data-dir", str(tmp_path)],
            name="blobservice", ready_url=f"http://127.0.0.1:{port}/_control/health")
        try:
            yield process
        finally:
            process.stop()

Every process gets its own session (``start_new_session=True``), so signals sent to the test
runner's terminal group do not reach it, and its output goes to ``.log_path``, whose tail is
put into error messages. Processes are signalled by the PID this object started, never by
name; as a last resort, processes still alive at interpreter exit are killed (``atexit``).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessStartError(RuntimeError):
    """The process exited or did not become ready in time (message ends with its log tail)."""


class ManagedProcess:
    """One child process, with its log file, readiness wait and guaranteed clean-up."""

    def __init__(self, popen: subprocess.Popen[bytes], name: str, log_path: Path) -> None:
        self._popen = popen
        self.name = name
        self.log_path = log_path
        self.returncode: int | None = None

    # -- starting

    @classmethod
    def start(
        cls,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        name: str,
        ready_url: str | None = None,
        ready_timeout: float = 30,
        log_dir: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> ManagedProcess:
        """Launch ``argv`` and, if ``ready_url`` is given, wait until it answers any HTTP status.

        ``env`` entries are added to (and override) the current environment; PYTHONUNBUFFERED
        is set so log files are up to date. The output goes to a new ``{name}-*.log`` file in
        ``log_dir`` (default: one temp directory per test run, kept for post-mortems; pass
        pytest's ``tmp_path`` to have pytest prune old logs), or to ``log_path`` (emptied first)
        when a log must be found by its name (`make run`'s ``var/log/api.log``). On failure the
        process is killed and ProcessStartError is raised with the tail of its log.
        """
        if log_path is not None:
            log_path = Path(log_path)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        else:
            directory = _default_log_dir() if log_dir is None else Path(log_dir)
            fd, log_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=directory)
            log_path = Path(log_name)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with os.fdopen(fd, "wb") as log_file:  # the child keeps its own copy of the handle
            popen = subprocess.Popen(
                argv,
                env=full_env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = cls(popen, name, log_path)
        with _live_lock:
            _live.add(process)
        try:
            if ready_url is not None:
                process.wait_ready(ready_url, ready_timeout)
        except BaseException:
            process.kill()
            raise
        return process

    def wait_ready(self, url: str, timeout: float = 30) -> None:
        """Poll ``url`` until it answers with any HTTP status; ProcessStartError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                code = self.kill()  # only reaps: it has exited already
                raise ProcessStartError(
                    f"{self.name} exited with {code} before {url} answered\n{self.log_tail()}"
                )
            if _answers(url):
                return
            if time.monotonic() > deadline:
                raise ProcessStartError(
                    f"{self.name} did not answer {url} within {timeout}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    # -- inspecting

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        """Whether the process is still running (an exited, unreaped child counts as dead)."""
        if self.returncode is not None:
            return False
        try:
            # WNOWAIT: look without reaping, so the PID stays ours until stop()/kill() reap it.
            result = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return result is None

    def log_tail(self, n: int = 50) -> str:
        """The last ``n`` lines of the process output."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            return f"(log unavailable: {error})"
        return "\n".join(f"[{self.name}] {line}" for line in lines[-n:])

    # -- stopping

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM the process, wait up to ``timeout`` seconds, then SIGKILL. Returns its code."""
        if self.returncode is not None:
            return self.returncode
        self._signal(signal.SIGTERM)
        if not self._wait_exited(timeout):
            self._signal(signal.SIGKILL)
            self._wait_exited(None)
        return self._reap()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit by itself (a one-shot command such as a migration);
        SIGKILL it after ``timeout`` seconds. Returns its code."""
        if self.returncode is not None:
            return self.returncode
        if not self._wait_exited(timeout):
            self._signal(signal.SIGKILL)
            self._wait_exited(None)
        return self._reap()

    def kill(self) -> int:
        """SIGKILL the process (e.g. to simulate a crash) and wait for it. Returns its code."""
        if self.returncode is not None:
            return self.returncode
        self._signal(signal.SIGKILL)
        self._wait_exited(None)
        return self._reap()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def _wait_exited(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.alive:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _reap(self) -> int:
        # The leader has exited but is not reaped yet, so its PID (= its process group id, as
        # it started a new session) cannot have been reused: SIGKILL whatever it left behind in
        # its own group (e.g. worker subprocesses), then reap it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.returncode = self._popen.wait()
        with _live_lock:
            _live.discard(self)
        return self.returncode

    # -- context manager

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"exited {self.returncode}"
        return f"<ManagedProcess {self.name} pid={self.pid} {state} log={self.log_path}>"


_run_log_dir: Path | None = None


def _default_log_dir() -> Path:
    # One directory for all the logs of this run (of the tests), rather than one per process.
    global _run_log_dir
    with _live_lock:
        if _run_log_dir is None:
            _run_log_dir = Path(tempfile.mkdtemp(prefix="managed-processes-"))
        return _run_log_dir


def wait_for_port(process: ManagedProcess, port: int, timeout: float = 30) -> None:
    """Wait until the process accepts TCP connections on 127.0.0.1:port (a non-HTTP server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.alive:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise ProcessStartError(f"{process.name} did not listen on {port}\n{process.log_tail()}")


def wait_for_log(process: ManagedProcess, text: str, timeout: float = 30) -> None:
    """Wait until ``text`` appears in the process's log (a process with no port to probe, such
    as the worker's "running."); ProcessStartError if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while text not in process.log_path.read_text(errors="replace"):
        if not process.alive:
            raise ProcessStartError(f"{process.name} exited\n{process.log_tail()}")
        if time.monotonic() > deadline:
            raise ProcessStartError(f"{process.name}: no {text!r}\n{process.log_tail()}")
        time.sleep(0.05)


# Readiness probes go straight to the service, whatever proxy the environment configures.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _direct.open(url, timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True  # any status means the server is up
    except (OSError, ValueError, http.client.HTTPException):
        return False


@atexit.register
def _kill_leftovers() -> None:
    # Safety net for callers that forgot stop(): never leave children behind the run.
    with _live_lock:
        leftovers = list(_live)
    for process in leftovers:
        process.kill()
