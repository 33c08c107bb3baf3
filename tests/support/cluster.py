"""Reading a django-q2 cluster's log: which process is running which job."""

import re
import time

READY = re.compile(r"(Process-[0-9a-f]+) ready for work at (\d+)")
PROCESSING = re.compile(r"(Process-[0-9a-f]+) processing orchestrate-([0-9a-f-]{36})")


def worker_pid_running(log_path, job_id: str, timeout: float = 20) -> int:
    """The PID of the worker process that took the job's task (per the cluster log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        pids = dict(READY.findall(text))
        for name, running in PROCESSING.findall(text):
            if running == job_id and name in pids:
                return int(pids[name])
        time.sleep(0.05)
    raise AssertionError(f"no worker took job {job_id} within {timeout}s")
