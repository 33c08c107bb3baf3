"""API benchmark: requests per second and latency under a fixed concurrency, beside their floors.

    make bench-api                      # = .venv/bin/python bench/api.py
    .venv/bin/python bench/api.py --connections 8 --duration 10 --warmup 2 --repeat 3

Starts its own stack (bench/stack.py: embedded MongoDB on SQLite, BlobService, JobService, one
django-q2 cluster, the API under gunicorn as `make run` configures it), makes one owner 30 jobs
and waits until they are EXECUTION_COMPLETED, stops the cluster (so that the load measures the
API and the database alone, with no worker competing for the cores), then drives the API with
wrk (a Lua script, bench/api.lua, sets the method, body and bearer token) at `--connections`
connections on as many threads, `--warmup` seconds unrecorded, then `--duration` seconds:

- `GET /api/v1/job/<id>/status` of one of those final jobs;
- `POST /api/v1/job` of 16 bytes (text/plain), over 200 owners' tokens in turn;
- `GET /api/v1/job?limit=20` (the owner's 30 jobs, a page of 20 and a next link);
- the floors: `GET /healthz` (the HTTP server and Django with no database), and straight to the
  same database with pymongo, from `--connections` processes: `find_one` of a job by its id
  and `insert_one` of a document the size of a job (into a collection of its own).

The limits are raised for the run (RATE_LIMIT_SUBMIT, RATE_LIMIT_READ; UPLOADS_PER_PROCESS to 8,
as 8 connections over gunicorn's 2 processes can put more than the default 4 bodies on one): the
rate counters still count every request and the upload slots are still taken, but no request
is refused; the POSTs spread over 200 owners, so the cap
on active jobs per owner (MAX_ACTIVE_JOBS_PER_OWNER, default) is counted on every POST and never
reached. Any answer other than the expected status fails the run.

Output: a Markdown table (req/s, p50 and p99 ms, the floor and the ratio of each row's req/s to
its floor's; medians over `--repeat` rounds) and bench/results/api-<UTC timestamp>.json.
Every process is stopped by its PID at the end, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stack import Stack  # noqa: E402

WRK_MISSING = "bench/api.py needs wrk (HTTP load generator): apt-get install -y wrk"
LUA = Path(__file__).resolve().parent / "api.lua"
OWNER_JOBS = 30
POST_OWNERS = 200
BODY = "sixteen bytes!!\n"
LIST_QUERY = "limit=20"
# Limits that count every request but refuse none (see the module docstring).
SETTINGS = {
    "RATE_LIMIT_SUBMIT": "1000000/min",
    "RATE_LIMIT_READ": "1000000/min",
    # 8 connections over 2 API processes can put more than the default 4 uploads on one.
    "UPLOADS_PER_PROCESS": "8",
    # Metrics as under `make run` and in the containers: one directory for the host's processes.
    "PROMETHEUS_MULTIPROC_DIR": "",  # set per run, below
}
DATABASE = "frontservice_bench"  # bench/stack.py's MONGODB_NAME


# --- wrk -------------------------------------------------------------------------------------


def wrk(url: str, *, method: str, tokens: Path | None, body: str | None, args) -> dict:
    """One wrk run; its figures (requests, p50/p99 in ms, req/s, errors)."""
    command = [
        "wrk",
        f"--connections={args.connections}",
        f"--threads={min(args.connections, 4)}",
        f"--duration={args.duration}s",
        "--timeout=10s",
        f"--script={LUA}",
        url,
        "--",
        method,
        str(tokens) if tokens else "-",
    ]
    if body is not None:
        command.append(body)
    if args.warmup:
        warm = [*command]
        warm[3] = f"--duration={args.warmup}s"
        subprocess.run(warm, capture_output=True, text=True, check=True)
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    errors = sum(figures[k] for k in figures if k.endswith("_errors") or k == "timeouts")
    if errors:
        raise RuntimeError(f"{method} {url}: {errors} errors or unexpected statuses: {figures}")
    seconds = figures["duration_us"] / 1e6
    return {
        "requests": figures["requests"],
        "req_per_s": figures["requests"] / seconds,
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
    }


# --- the raw pymongo floors ------------------------------------------------------------------


def _raw_worker(job: tuple) -> list[float]:
    """One client process: find_one by id or insert_one for `seconds`; each latency in ms."""
    kind, uri, collection_name, value, seconds = job
    from pymongo import MongoClient

    client = MongoClient(uri)
    collection = client[DATABASE][collection_name]
    collection.find_one({"_id": value} if kind == "find_one" else {})  # connected before timing
    latencies = []
    deadline = time.perf_counter() + seconds
    while (started := time.perf_counter()) < deadline:
        if kind == "find_one":
            if collection.find_one({"_id": value}) is None:
                raise RuntimeError("the job is not found")
        else:
            collection.insert_one(dict(value))  # a copy: insert_one adds an _id
        latencies.append((time.perf_counter() - started) * 1000)
    client.close()
    return latencies


def raw(kind: str, stack: Stack, collection: str, value, args) -> dict:
    uri = stack.env["MONGODB_URI"]
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.connections) as pool:
        if args.warmup:
            pool.map(_raw_worker, [(kind, uri, collection, value, args.warmup)] * args.connections)
        runs = pool.map(
            _raw_worker, [(kind, uri, collection, value, args.duration)] * args.connections
        )
    latencies = sorted(ms for run in runs for ms in run)
    return {
        "requests": len(latencies),
        "req_per_s": len(latencies) / args.duration,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
    }


# --- the stack and its data ------------------------------------------------------------------


def prepare(stack: Stack, work: Path) -> dict:
    """The reader's jobs (final), the POSTers' tokens, the raw job document and id."""
    tokens = stack.manage(
        "shell",
        "-c",
        "from jobs.api.tokens import issue_token\n"
        f"for n in range({POST_OWNERS + 1}):\n"
        "    token = issue_token(tenant_id='bench', sub=f'owner-{n}', lifetime_seconds=86400)\n"
        "    print('token', token)",
    ).splitlines()
    tokens = [line.split()[1] for line in tokens if line.startswith("token ")]
    reader, posters = tokens[0], tokens[1:]
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {reader}"
    api = stack.url("api")
    ids = []
    for _ in range(OWNER_JOBS):
        response = session.post(
            f"{api}/api/v1/job", data=BODY, headers={"Content-Type": "text/plain"}, timeout=30
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    deadline = time.monotonic() + 300
    for job_id in ids:
        while True:
            status = session.get(f"{api}/api/v1/job/{job_id}/status", timeout=30).json()["status"]
            if status == "EXECUTION_COMPLETED":
                break
            if status.endswith("ERROR") or time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} is {status}")
            time.sleep(0.2)
    (work / "reader.txt").write_text(reader + "\n")
    (work / "posters.txt").write_text("\n".join(posters) + "\n")
    from pymongo import MongoClient

    client = MongoClient(stack.env["MONGODB_URI"])
    document = client[DATABASE]["jobs_job"].find_one({"status": "EXECUTION_COMPLETED"})
    client.close()
    return {"job_id": ids[0], "raw_id": document["_id"], "raw_document": document}


ROWS = ("status", "post", "list", "healthz", "find_one", "insert_one")
FLOORS = {"status": "find_one", "post": "insert_one", "list": "find_one", "healthz": None}
LABELS = {
    "status": "GET status (final job)",
    "post": "POST 16 bytes",
    "list": f"GET /api/v1/job?{LIST_QUERY}",
    "healthz": "GET /healthz",
    "find_one": "pymongo find_one by id",
    "insert_one": "pymongo insert_one",
}


def one_round(stack: Stack, work: Path, data: dict, args) -> dict:
    api = stack.url("api")
    reader, posters = work / "reader.txt", work / "posters.txt"
    document = {k: v for k, v in data["raw_document"].items() if k != "_id"}
    runs = {
        "status": lambda: wrk(
            f"{api}/api/v1/job/{data['job_id']}/status",
            method="GET",
            tokens=reader,
            body=None,
            args=args,
        ),
        "post": lambda: wrk(
            f"{api}/api/v1/job", method="POST", tokens=posters, body=BODY, args=args
        ),
        "list": lambda: wrk(
            f"{api}/api/v1/job?{LIST_QUERY}", method="GET", tokens=reader, body=None, args=args
        ),
        "healthz": lambda: wrk(f"{api}/healthz", method="GET", tokens=None, body=None, args=args),
        "find_one": lambda: raw("find_one", stack, "jobs_job", data["raw_id"], args),
        "insert_one": lambda: raw("insert_one", stack, "bench_raw_insert", document, args),
    }
    results = {}
    for name in ROWS:
        print(f"  {LABELS[name]} ...", file=sys.stderr, flush=True)
        results[name] = runs[name]()
    return results


def summarise(rounds: list[dict]) -> dict:
    summary = {}
    for name in ROWS:
        summary[name] = {
            key: statistics.median(r[name][key] for r in rounds)
            for key in ("req_per_s", "p50_ms", "p99_ms")
        }
    for name, floor in FLOORS.items():
        if floor:
            summary[name]["floor"] = floor
            summary[name]["ratio"] = summary[name]["req_per_s"] / summary[floor]["req_per_s"]
    summary["healthz"]["ratio_status_to_healthz"] = (
        summary["status"]["req_per_s"] / summary["healthz"]["req_per_s"]
    )
    return summary


def markdown(summary: dict, host: dict, args) -> str:
    lines = [
        f"{args.connections} connections, {args.duration} s per row after {args.warmup} s of "
        f"warm-up, median of {args.repeat} round(s)",
        "",
        "| request | req/s | p50 ms | p99 ms | floor | ratio to floor |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name in ROWS:
        row = summary[name]
        floor = row.get("floor")
        ratio = f"{row['ratio']:.2f}" if floor else ""
        if name == "healthz":
            floor, ratio = "(status ÷ healthz)", f"{row['ratio_status_to_healthz']:.2f}"
        lines.append(
            f"| {LABELS[name]} | {row['req_per_s']:.0f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {LABELS.get(floor, floor or '')} | {ratio} |"
        )
    lines += ["", f"Machine: {host['nproc']} cores, {host['mem_total_gib']} GiB, {host['system']}"]
    return "\n".join(lines)


def machine() -> dict:
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "mem_total_gib": round(mem_kib / 1024**2, 1),
        "system": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "load_average_at_start": os.getloadavg(),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per row, not recorded")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; figures are medians")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    return parser.parse_args(argv)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # unwinds through the finally blocks, which stop every process


def main(argv: list[str]) -> int:
    if shutil.which("wrk") is None:
        print(WRK_MISSING, file=sys.stderr)
        return 2
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    host = machine()
    root = Path(tempfile.mkdtemp(prefix="frontservice-bench-api-"))
    keep = args.keep
    stack = Stack(
        root=root, settings={**SETTINGS, "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics")}
    )
    rounds = []
    try:
        print("starting the stack ...", file=sys.stderr, flush=True)
        stack.start()
        data = prepare(stack, root)
        # The jobs are final: the load is the API's and the database's alone.
        for name in stack.workers:
            stack.processes.pop(name).stop()
        for n in range(args.repeat):
            print(f"round {n + 1} of {args.repeat}", file=sys.stderr, flush=True)
            rounds.append(one_round(stack, root, data, args))
    except KeyboardInterrupt:
        print("interrupted; every started process was stopped", file=sys.stderr)
        return 130
    except Exception:
        keep = True  # the process logs (<root>/logs/) explain the failure
        raise
    finally:
        stack.stop()
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    summary = summarise(rounds)
    print(markdown(summary, host, args))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPO / "bench" / "results" / f"api-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "created_at": stamp,
        "command": [sys.executable, *sys.argv],
        "machine": host,
        "args": vars(args),
        "summary": summary,
        "rounds": rounds,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
