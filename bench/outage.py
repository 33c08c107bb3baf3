"""A JobService outage with jobs waiting: what reaches JobService, how the workers are held, and
how soon the jobs go on once it is back.

    python bench/outage.py [--jobs 200] [--outage 300] [--workers 2]

Starts a stack (bench/stack.py), makes JobService answer every submit with 503 (its
`/_control/faults`), submits the jobs, and keeps the outage for `--outage` seconds. Then it
clears the fault and waits for every job to be SUBMITTED or further (or in an error state).

Prints the requests JobService got during the outage (its `/_control/stats`), how long after
the recovery the last job was settled, the jobs' statuses, and the worker-slot occupancy during
the outage, from django-q2's task records (when each task started and stopped): the share of
the cluster's worker-seconds spent running a task, and the most tasks running at once.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack

# Past the submit, or given up: nothing more for the worker tier to do with the job.
SETTLED = {
    "SUBMITTED",
    "EXECUTION_COMPLETED",
    "EXECUTION_ERROR",
    "STORED_ERROR",
    "SUBMITTED_ERROR",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--outage", type=float, default=300.0, help="seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
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

    while time.monotonic() - outage_began < args.outage:
        time.sleep(0.5)
    outage_ended = datetime.now(UTC)
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


if __name__ == "__main__":
    main()
