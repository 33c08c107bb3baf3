"""Reading a django-q2 cluster's log and /proc: which process is running which job, which
process of the cluster is which, and the restarts of `manage.py worker`."""

import json
import re
import time
from pathlib import Path

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


PUSHER = re.compile(r"(Process-[0-9a-f]+) pushing tasks at (\d+)")
MONITOR = re.compile(r"(Process-[0-9a-f]+) monitoring at (\d+)")
RESTART = "worker_cluster_restart"


def children(pid: int) -> list[int]:
    """The PIDs of a process's children, from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


SENTINEL = re.compile(r"starting: queue (\w+), sentinel pid (\d+)\.")


def sentinel_pid(worker, queue: str = "jobs") -> int | None:
    """The PID of the queue's running sentinel: the last one the command logged starting for
    that queue, while it is still the command's child."""
    started = [
        int(pid) for name, pid in SENTINEL.findall(worker.log_path.read_text()) if name == queue
    ]
    if started and started[-1] in children(worker.pid):
        return started[-1]
    return None


def cluster_processes(worker, queue: str = "jobs", workers: int = 2, timeout: float = 30) -> dict:
    """The queue's running cluster below the `manage.py worker` process the test started, by PID.

    The sentinel is the child of that process the command logged for the queue; its children
    are the workers, the monitor and the pusher, told apart by the line each logs with its PID.
    Waits until all are there.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = worker.log_path.read_text()
        roles = {int(pid): "worker" for _, pid in READY.findall(text)}
        roles |= {int(pid): "pusher" for _, pid in PUSHER.findall(text)}
        roles |= {int(pid): "monitor" for _, pid in MONITOR.findall(text)}
        sentinel = sentinel_pid(worker, queue)
        if sentinel is not None:
            below = children(sentinel)
            found = {"sentinel": sentinel, "worker": [], "monitor": [], "pusher": []}
            for pid in below:
                if pid in roles:
                    found[roles[pid]].append(pid)
            if (
                len(below) == workers + 2
                and len(found["worker"]) == workers
                and len(found["monitor"]) == len(found["pusher"]) == 1
            ):
                return found
        assert worker.alive, f"the worker exited\n{worker.log_tail()}"
        assert time.monotonic() < deadline, f"no whole {queue} cluster within {timeout}s"
        time.sleep(0.1)


def restarts(worker, queue: str | None = None) -> list[dict]:
    """The cluster restarts `manage.py worker` logged (of one queue's cluster, or of all), as
    their JSON log lines."""
    found = []
    for line in worker.log_path.read_text().splitlines():
        if RESTART in line and line.startswith("{"):
            restart = json.loads(line)
            if queue is None or restart.get("queue") == queue:
                found.append(restart)
    return found


def wait_for_restart(worker, after: int, queue: str = "jobs", timeout: float = 30) -> dict:
    """The queue's cluster restart logged after its first `after` ones, once the new cluster
    is running."""
    deadline = time.monotonic() + timeout
    while True:
        lines = worker.log_path.read_text().splitlines()
        found = [
            n
            for n, line in enumerate(lines)
            if RESTART in line and line.startswith("{") and json.loads(line).get("queue") == queue
        ]
        if (
            len(found) > after
            and sentinel_pid(worker, queue) is not None
            and any("running." in line for line in lines[found[after] :])
        ):
            return json.loads(lines[found[after]])
        assert worker.alive, f"the worker exited\n{worker.log_tail()}"
        assert time.monotonic() < deadline, f"no restart within {timeout}s\n{worker.log_tail()}"
        time.sleep(0.1)
