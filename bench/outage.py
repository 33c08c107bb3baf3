"""A JobService outage with jobs waiting: what reaches JobService, how the workers are held, and
how soon the jobs go on once it is back.

    python bench/outage.py [--jobs 200] [--outage 300] [--workers 2]

Starts a stack (bench/stack.py), makes JobService answer every submit with 503 (its
`/_control/faults`), submits the jobs, and keeps the outage for `--outage` seconds while
sampling how many of the cluster's workers are running a task (from the worker's log: tasks
started and not yet finished). Then it clears the fault and waits for every job to be
SUBMITTED or further. Prints the requests JobService got during the outage (its
`/_control/stats`), the worker occupancy, how long after the recovery the last job was
SUBMITTED, and the jobs' statuses at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack

PAST_SUBMIT = {"SUBMITTED", "EXECUTION_COMPLETED", "EXECUTION_ERROR"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--outage", type=float, default=300.0, help="seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="fs-outage-"))
    stack = Stack(root=root, settings={"Q_WORKERS": str(args.workers)}, job_delay=0.5)
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

    def submit(n: int) -> str:
        response = api.post(
            f"{stack.url('api')}/api/v1/job",
            data=f"job {n}".encode(),
            headers={"Content-Type": "text/plain"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        job_ids = list(pool.map(submit, range(args.jobs)))
    submitted_in = time.monotonic() - outage_began

    log = stack.processes["worker"].log_path
    busy: list[int] = []
    while time.monotonic() - outage_began < args.outage:
        busy.append(_tasks_running(log))
        time.sleep(0.5)
    stats = requests.get(f"{job_url}/_control/stats", timeout=5).json()
    puts = sum(counts.get("PUT", 0) for counts in stats["by_id"].values())
    statuses_at_recovery = _statuses(api, stack, job_ids)

    requests.delete(f"{job_url}/_control/faults", timeout=5).raise_for_status()
    recovered = time.monotonic()
    last_submitted = None
    while time.monotonic() - recovered < 600:
        statuses = _statuses(api, stack, job_ids)
        if all(status in PAST_SUBMIT | {"SUBMITTED_ERROR", "STORED_ERROR"} for status in statuses):
            last_submitted = time.monotonic() - recovered
            break
        time.sleep(0.5)
    final = _statuses(api, stack, job_ids)
    return {
        "jobs": args.jobs,
        "workers": args.workers,
        "outage_seconds": args.outage,
        "submitting_took_seconds": round(submitted_in, 1),
        "jobservice_submits_during_outage": puts,
        "statuses_at_recovery": dict(collections.Counter(statuses_at_recovery)),
        "busy_workers_during_outage": {
            "samples": len(busy),
            "mean": round(statistics.fmean(busy), 2) if busy else None,
            "max": max(busy, default=None),
            "share_of_samples_all_busy": round(sum(b >= args.workers for b in busy) / len(busy), 2)
            if busy
            else None,
        },
        "seconds_from_recovery_to_last_job_settled": (
            round(last_submitted, 1) if last_submitted is not None else None
        ),
        "final_statuses": dict(collections.Counter(final)),
    }


def _tasks_running(log: Path) -> int:
    """Tasks a worker has started and the cluster has not reported done (django-q2's log)."""
    text = log.read_text(encoding="utf-8", errors="replace")
    started = text.count(" processing ")
    done = text.count("Processed '") + text.count("Failed '")
    return max(0, started - done)


def _statuses(api: requests.Session, stack: Stack, job_ids: list[str]) -> list[str]:
    return [
        api.get(f"{stack.url('api')}/api/v1/job/{job_id}/status", timeout=30).json()["status"]
        for job_id in job_ids
    ]


if __name__ == "__main__":
    main()
