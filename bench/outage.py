"""A JobService outage with jobs waiting: what reaches JobService, how the workers are held, and
how soon the jobs go on once it is back.

    python bench/outage.py [--jobs 200] [--outage 300] [--workers 2] [--repo PATH]

Starts a stack (bench/stack.py), makes JobService answer every submit with 503 (its
`/_control/faults`), submits the jobs, and keeps the outage for `--outage` seconds. Then it
clears the fault and waits for every job to be SUBMITTED or further (or in an error state).

Prints the requests JobService got during the outage (its `/_control/stats`), how long after
the recovery the last job was settled, the jobs' statuses, and the worker-slot occupancy during
the outage, two ways: from django-q2's task records (when each task started and stopped: the
share of the cluster's worker-seconds spent running a task, and the most tasks running at once),
and sampled every half second from /proc (a worker waiting for a task sits in read() on the task
queue's pipe, or on that queue's lock, a futex; anything else, a sleep among them, is busy).
Only the jobs' cluster counts: no job here has a webhook.

`--repo PATH` runs the stack from another checkout (its manage.py and code, this script's
launcher), such as a worktree of an older commit, to measure the same outage before a change.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.stack as stack_module
from bench.stack import Stack, descendants

# Past the submit, or given up: nothing more for the worker tier to do with the job.
SETTLED = {
    "SUBMITTED",
    "EXECUTION_COMPLETED",
    "EXECUTION_ERROR",
    "STORED_ERROR",
    "SUBMITTED_ERROR",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--outage", type=float, default=300.0, help="seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--repo", type=Path, default=None, help="the checkout to run")
    args = parser.parse_args()
    if args.repo:
        stack_module.REPO = args.repo.resolve()  # the launcher's cwd for every process
    root = args.root or Path(tempfile.mkdtemp(prefix="fs-outage-"))
    settings = {
        "Q_WORKERS": str(args.workers),
        # One owner submits every job and polls them all: no per-owner limit in the way.
        "MAX_ACTIVE_JOBS_PER_OWNER": str(args.jobs + 10),
        "RATE_LIMIT_SUBMIT": "100000/min",
        "RATE_LIMIT_READ": "100000/min",
    }
    stack = Stack(root=root, settings=settings, job_delay=0.5)
    try:
        stack.start()
        print(json.dumps(run(stack, args), indent=2))
    finally:
        stack.stop()


def run(stack: Stack, args) -> dict:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {stack.token}"
    job_url = stack.url("job")
    requests.post(f"{job_url}/_control/reset-stats", timeout=5).raise_for_status()
    requests.post(
        f"{job_url}/_control/faults",
        json={"fail_rate": 1.0, "status": 503, "methods": ["PUT"]},
        timeout=5,
    ).raise_for_status()
    outage_began = time.monotonic()
    outage_started = datetime.now(UTC)

    def submit(n: int) -> str:
        while True:
            response = api.post(
                f"{stack.url('api')}/api/v1/job",
                data=f"job {n}".encode(),
                headers={"Content-Type": "text/plain"},
                timeout=60,
            )
            if response.status_code != 429:  # too many uploads of one owner at once: again
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        response.raise_for_status()
        return response.json()["id"]

    sampler = Sampler(stack.processes["worker"])
    sampler.start()
    with ThreadPoolExecutor(8) as pool:
        job_ids = list(pool.map(submit, range(args.jobs)))
    submitted_in = time.monotonic() - outage_began

    while time.monotonic() - outage_began < args.outage:
        time.sleep(0.5)
    outage_ended = datetime.now(UTC)
    sampler.stop.set()
    sampler.join()
    stats = requests.get(f"{job_url}/_control/stats", timeout=5).json()
    puts = sum(counts.get("PUT", 0) for counts in stats["by_id"].values())
    client = pymongo.MongoClient(stack.env["MONGODB_URI"], uuidRepresentation="standard")
    db = client[stack.env["MONGODB_NAME"]]
    statuses_at_recovery = _statuses(db, job_ids)

    requests.delete(f"{job_url}/_control/faults", timeout=5).raise_for_status()
    recovered = time.monotonic()
    last_submitted = None
    while time.monotonic() - recovered < 900:
        if all(status in SETTLED for status in _statuses(db, job_ids)):
            last_submitted = time.monotonic() - recovered
            break
        time.sleep(0.2)
    final = _statuses(db, job_ids)
    log = stack.processes["worker"].log_path
    occupancy = _occupancy(db, log, since=outage_started, until=outage_ended, workers=args.workers)
    return {
        "jobs": args.jobs,
        "workers": args.workers,
        "outage_seconds": args.outage,
        "submitting_took_seconds": round(submitted_in, 1),
        "jobservice_submits_during_outage": puts,
        "statuses_at_recovery": dict(collections.Counter(statuses_at_recovery)),
        "worker_occupancy_during_outage": occupancy,
        "worker_occupancy_sampled_during_outage": sampler.summary(),
        "seconds_from_recovery_to_last_job_settled": (
            round(last_submitted, 1) if last_submitted is not None else None
        ),
        "final_statuses": dict(collections.Counter(final)),
    }


def _statuses(db, job_ids: list[str]) -> list[str]:
    """The jobs' statuses, read from the database (polling the API would load the stack); the
    bench's database holds only these jobs."""
    found = {
        str(uuid.UUID(str(document["_id"]))): document["status"]
        for document in db.jobs_job.find({}, {"status": 1})
    }
    return [found.get(job_id, "?") for job_id in job_ids]


def _occupancy(db, log: Path, *, since: datetime, until: datetime, workers: int) -> dict:
    """How much of the workers' time tasks ran, within [since, until]: each task's start from
    the worker's log (django-q2's "processing <name>"), its end from django-q2's task record
    (`stopped`; its `started` is when it was enqueued), paired in order per task name."""
    starts: dict[str, list[datetime]] = collections.defaultdict(list)
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if " processing " not in line:
            continue
        with contextlib.suppress(ValueError, KeyError):
            entry = json.loads(line)
            name = entry["msg"].split(" processing ", 1)[1].split(" ", 1)[0]
            starts[name].append(datetime.fromisoformat(entry["ts"]))
    stops: dict[str, list[datetime]] = collections.defaultdict(list)
    for task in db.django_q_task.find({}, {"name": 1, "stopped": 1}):
        if task.get("stopped"):
            stops[task["name"]].append(task["stopped"].replace(tzinfo=UTC))
    spans = []
    for name, began in starts.items():
        for start, stop in zip(sorted(began), sorted(stops.get(name, [])), strict=False):
            start, stop = max(start, since), min(stop, until)
            if stop > start:
                spans.append((start, stop))
    window = (until - since).total_seconds()
    busy = sum((stop - start).total_seconds() for start, stop in spans)
    most, at = 0, since
    while at < until:
        most = max(most, sum(start <= at < stop for start, stop in spans))
        at += timedelta(seconds=0.5)
    return {
        "task_runs": len(spans),
        "busy_share_of_worker_seconds": round(busy / (workers * window), 3),
        "most_running_at_once": most,
    }


READY = re.compile(r"ready for work at (\d+)")
JOBS_SENTINEL = re.compile(r"starting: queue jobs, sentinel pid (\d+)")


class Sampler(threading.Thread):
    """Every half second: how many of the jobs' cluster's workers are busy, from /proc."""

    def __init__(self, worker) -> None:
        super().__init__(name="occupancy", daemon=True)
        self.worker = worker
        self.stop = threading.Event()
        self.samples: list[tuple[int, int]] = []  # (busy, workers)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            with contextlib.suppress(OSError):
                pids = self.workers()
                if pids:
                    self.samples.append((sum(not idle(pid) for pid in pids), len(pids)))

    def workers(self) -> list[int]:
        text = self.worker.log_path.read_text(encoding="utf-8", errors="replace")
        ready = {int(pid) for pid in READY.findall(text)}
        # One cluster per queue: the jobs' sentinel's children. An older checkout runs one
        # cluster, and every worker below the command is its.
        sentinels = [int(pid) for pid in JOBS_SENTINEL.findall(text)]
        root = sentinels[-1] if sentinels else self.worker.pid
        return [pid for pid in descendants(root) if pid in ready]

    def summary(self) -> dict:
        if not self.samples:
            return {"samples": 0}
        busy = sum(b for b, _ in self.samples)
        slots = sum(n for _, n in self.samples)
        return {
            "samples": len(self.samples),
            "busy_share_of_worker_samples": round(busy / slots, 3),
            "samples_with_every_worker_busy": round(
                sum(b == n for b, n in self.samples) / len(self.samples), 3
            ),
        }


def idle(pid: int) -> bool:
    """Whether the worker waits for a task: its main thread in read() on a pipe (the task
    queue's, holding its lock) or in futex() (waiting for that lock). x86_64 syscall numbers."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return True  # gone: holds no slot
    if not fields or fields[0] == "running":
        return False
    if fields[0] == "202":  # futex
        return True
    if fields[0] == "0":  # read
        with contextlib.suppress(OSError, ValueError, IndexError):
            return os.readlink(f"/proc/{pid}/fd/{int(fields[1], 16)}").startswith("pipe:")
    return False


if __name__ == "__main__":
    main()
