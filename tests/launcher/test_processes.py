"""launcher/processes.py: processes are started, awaited and never left behind."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from launcher.processes import ManagedProcess, ProcessStartError, free_port


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def pid_exists(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


SERVE = (
    "import http.server, sys; "
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), "
    "http.server.BaseHTTPRequestHandler).serve_forever()"
)


def test_it_waits_until_the_ready_url_answers_and_stops_with_sigterm(tmp_path):
    port = free_port()
    process = ManagedProcess.start(
        [sys.executable, "-c", SERVE, str(port)],
        name="server",
        ready_url=f"http://127.0.0.1:{port}/",
        log_dir=tmp_path,
    )

    assert process.alive
    assert process.stop() == -15  # default SIGTERM action, delivered to the child
    assert not process.alive
    assert not pid_exists(process.pid)


def test_a_process_that_exits_early_fails_the_start_with_its_output(tmp_path):
    with pytest.raises(ProcessStartError) as failure:
        ManagedProcess.start(
            python("print('boom: bad config'); raise SystemExit(3)"),
            name="crasher",
            ready_url=f"http://127.0.0.1:{free_port()}/",
            log_dir=tmp_path,
        )

    assert "exited with 3" in str(failure.value)
    assert "boom: bad config" in str(failure.value)


def test_a_process_that_never_gets_ready_is_killed(tmp_path):
    code = "import os, time; print('still booting', os.getpid(), flush=True); time.sleep(60)"
    with pytest.raises(ProcessStartError, match="did not answer") as failure:
        ManagedProcess.start(
            python(code),
            name="sleeper",
            ready_url=f"http://127.0.0.1:{free_port()}/",
            ready_timeout=0.5,
            log_dir=tmp_path,
        )

    message = str(failure.value)
    assert "still booting" in message
    assert not pid_exists(int(message.split("still booting ")[1].split()[0]))


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    process = ManagedProcess.start(python(code), name="stubborn", log_dir=tmp_path)
    while "ready" not in process.log_path.read_text():
        time.sleep(0.01)

    started = time.monotonic()
    assert process.stop(timeout=0.3) == -9
    assert time.monotonic() - started < 3


def test_stop_also_removes_what_the_process_left_behind_in_its_group(tmp_path):
    # The child starts a grandchild and exits on SIGTERM without stopping it.
    code = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    process = ManagedProcess.start(python(code), name="parent", log_dir=tmp_path)
    while not process.log_path.read_text().strip():
        time.sleep(0.01)
    grandchild = int(process.log_path.read_text().split()[0])

    process.stop()

    deadline = time.monotonic() + 5
    while pid_exists(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)  # it is reaped by init once killed
    assert not pid_exists(grandchild)


def test_it_works_as_a_context_manager(tmp_path):
    with ManagedProcess.start(
        python("import time; time.sleep(60)"), name="ctx", log_dir=tmp_path
    ) as process:
        assert process.alive
    assert not process.alive
    assert process.returncode is not None
