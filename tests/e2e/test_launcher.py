"""`make run` (python -m launcher, launcher/__main__.py): the whole service from one command on
ports of its choosing, found by operator commands through its run file, and stopped entirely by
one Ctrl-C.

The launched service has a database, queue and data directory of its own (under tmp_path), so it
shares nothing with the session's stack.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import requests

from launcher.processes import ManagedProcess, free_port, wait_for_log
from launcher.stack import REPO
from tests.support.api import submit, wait_for_status

STARTED = re.compile(r"^started (\w+) \(pid (\d+), log (\S+)\)$", re.M)
# The session's stack and directories, which `make run` must not see: it chooses its own
# addresses, or gets its own here (ManagedProcess adds env to this process's environment).
CHOSEN_BY_MAKE_RUN = ("MONGODB_URI", "BLOBSERVICE_URL", "JOBSERVICE_URL", "FRONTSERVICE_VAR_DIR")


def _own(tmp_path: Path) -> dict[str, str]:
    return {
        # Emptied at its start, then written by its processes: never the session's.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "STAGING_DIR": str(tmp_path / "staging"),
        # A queue of its own, on its own database (no Redis, whatever the session's broker).
        "REDIS_URL": "",
        "Q_CLUSTER_NAME": f"fs-make-run-{uuid.uuid4().hex[:8]}",
    }


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CHOSEN_BY_MAKE_RUN}
    return {**env, **extra}


def _manage(*args: str, var_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    # FRONTSERVICE_VAR_DIR as `make manage` sets it, no address: the database is the run file's.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=_environment(**env, FRONTSERVICE_VAR_DIR=str(var_dir)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def test_make_run_starts_the_service_commands_find_it_and_ctrl_c_stops_it(tmp_path, alice):
    var = tmp_path / "var"
    ports = {name: free_port() for name in ("api", "mongo", "blob", "job")}
    argv = [sys.executable, "-m", "launcher", "--data-dir", str(var)]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    env = _own(tmp_path)
    run = ManagedProcess.start(argv, env=env, cwd=REPO, name="make-run", log_dir=tmp_path)
    started: dict[str, int] = {}
    try:
        wait_for_log(run, "FrontService is running", timeout=180)
        output = run.log_path.read_text()
        started = {name: int(pid) for name, pid, _ in STARTED.findall(output)}
        assert list(started) == ["mongo", "blob", "job", "worker", "api"], output
        assert not [pid for pid in started.values() if _gone(pid)]
        logs = {path.name for path in (var / "log").iterdir()}
        assert logs == {f"{name}.log" for name in [*started, "migrate"]}
        run_file = (var / "run.env").read_text()
        assert f"MONGODB_URI=mongodb://127.0.0.1:{ports['mongo']}/" in run_file
        assert f"JOBSERVICE_URL=http://127.0.0.1:{ports['job']}" in run_file

        service = SimpleNamespace(api=f"http://127.0.0.1:{ports['api']}")
        job_id = submit(service, alice, b"made by make run")["id"]
        wait_for_status(service, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=120)
        output = requests.get(
            f"{service.api}/api/v1/job/{job_id}/output", headers=alice.headers, timeout=30
        )
        assert (output.status_code, output.content) == (200, b"MADE BY MAKE RUN")
        # What reached the downstream services: one run of the job, its result in BlobService.
        job_stats = requests.get(f"http://127.0.0.1:{ports['job']}/_control/stats", timeout=10)
        assert job_stats.json()["executions"] == {job_id: 1}
        blob = requests.get(f"http://127.0.0.1:{ports['blob']}/blobs/{job_id}", timeout=10)
        assert blob.content == b"MADE BY MAKE RUN"
        assert list((tmp_path / "metrics").glob("counter_*.db"))  # its own, not the session's
        # An operator command with nothing exported finds this database through the run file.
        summary = _manage(
            "jobs_summary", "--json", "--tenant", alice.tenant_id, var_dir=var, env=env
        )
        assert summary.returncode == 0, summary.stderr
        jobs = json.loads(summary.stdout)["jobs"]
        assert jobs["total"] == jobs["by_status"]["EXECUTION_COMPLETED"] == 1

        os.kill(run.pid, signal.SIGINT)  # Ctrl-C
        deadline = time.monotonic() + 90
        while run.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not run.alive, run.log_tail()
        assert run.stop() == 0
    finally:
        if run.stop(timeout=60) == -signal.SIGKILL:
            # It could not stop them itself: its processes lead sessions of their own.
            for pid in started.values():
                if not _gone(pid):
                    os.kill(pid, signal.SIGKILL)
    assert "stopping..." in run.log_path.read_text()
    assert [name for name, pid in started.items() if not _gone(pid)] == []
    assert not (var / "run.env").exists()
