"""App time per request, in-process: wall time minus the time spent waiting on MongoDB.

    .venv/bin/python bench/apptime.py [--requests 2000] [--repeat 3]
    .venv/bin/python bench/apptime.py --profile status [--sort tottime] [--top 30]

Each request goes through the whole WSGI application gunicorn runs (frontservice.wsgi: every
middleware, DRF's authentication with a real JWT, the rate counters, the view, the access log
line and the metrics), called in this process with a WSGI environ built by hand, so no HTTP
client or server is timed. A pymongo CommandListener (pymongo.monitoring) adds up the
`duration_micros` of every database command the request sends, from any client (Django's,
django-q2's broker); that is the time spent waiting on MongoDB, and the rest is the app's own
time, which means the same on a real cluster as on the embedded database used here.

The database is the embedded MongoDB (frontservice.embedded_mongo, in memory) as a process of
its own, on a free port, stopped by its PID at the end. Log lines are formatted as in production
(JSON) and written to /dev/null; metrics go to a prometheus_client multiprocess directory, as
under `make run` and in the containers.

Paths: GET /healthz; GET status of a final job (EXECUTION_COMPLETED, with its history); POST of
16 bytes (text/plain, Content-Length); GET /api/v1/job?limit=20 over an owner with 30 jobs. The
POSTs rotate over owners (50 each), so the cap on active jobs (MAX_ACTIVE_JOBS_PER_OWNER, left
at its default) never refuses one; the rate limits are raised so that they count but never refuse.

The app time counts whatever else delays the process too: on a machine busy with other work,
the scheduler's. So the table also shows the CPU time of the thread per request
(time.thread_time(): the request's own Python and system time, without waiting on the database
or for a core), which is the steadier figure on a loaded machine and about the app time on an
idle one.

Output: a table (median and p90 app ms, median CPU ms, median wall ms, database commands and ms
per request; each figure the median over `--repeat` rounds) and
bench/results/apptime-<timestamp>.json.
With `--profile PATH`, the same requests under cProfile, its top entries printed instead.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pymongo import monitoring  # noqa: E402

from tests.support.processes import ManagedProcess, free_port, wait_for_port  # noqa: E402

PATHS = ("healthz", "status", "post", "list")
POSTS_PER_OWNER = 50
LIST_JOBS = 30
LIST_QUERY = "limit=20"


class DatabaseTime(monitoring.CommandListener):
    """Adds up the round trips of every database command (this process, all clients)."""

    def __init__(self) -> None:
        self.micros = 0
        self.commands = 0
        self._lock = threading.Lock()

    def started(self, event) -> None:
        pass

    def succeeded(self, event) -> None:
        self._add(event)

    def failed(self, event) -> None:
        self._add(event)

    def _add(self, event) -> None:
        with self._lock:
            self.micros += event.duration_micros
            self.commands += 1

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.micros, self.commands


def start_database(work: Path) -> ManagedProcess:
    port = free_port()
    server = ManagedProcess.start(
        [sys.executable, "-m", "frontservice.embedded_mongo", "--memory", "--port", str(port)],
        name="mongodb",
        log_dir=work,
    )
    wait_for_port(server, port)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "frontservice.settings",
            "MONGODB_URI": f"mongodb://127.0.0.1:{port}/?directConnection=true",
            "MONGODB_NAME": "frontservice_apptime",
            "FRONTSERVICE_VAR_DIR": str(work / "var"),
            "STAGING_DIR": str(work / "staging"),
            "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
            "Q_CLUSTER_NAME": f"fs-apptime-{uuid.uuid4().hex[:8]}",
            "REDIS_URL": "",
            "LOG_FORMAT": "json",
            "RATE_LIMIT_SUBMIT": "1000000/min",
            "RATE_LIMIT_READ": "1000000/min",
        }
    )
    return server


class Client:
    """Calls the WSGI application in this process; returns (status, body)."""

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, method: str, path: str, *, token: str = "", query: str = "", body=b""):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT": "*/*",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        if token:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if body:
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["CONTENT_TYPE"] = "text/plain"
        status = []
        result = self.application(environ, lambda s, headers, exc_info=None: status.append(s))
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return int(status[0].split()[0]), content


def quiet_logs() -> None:
    # Formatted as in production, written nowhere: the formatting is app time, the terminal not.
    sink = open(os.devnull, "w")  # noqa: SIM115 (open for the process's lifetime)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


def prepare(client: Client, requests: int) -> dict:
    """Owners, tokens and jobs for every path; what each request needs."""
    from jobs.api.tokens import issue_token
    from jobs.models import Job

    run = uuid.uuid4().hex[:8]
    reader = ("apptime", f"reader-{run}")
    token = issue_token(tenant_id=reader[0], sub=reader[1], lifetime_seconds=24 * 3600)
    now = datetime.now(UTC)
    history = [
        {"at": (now + timedelta(seconds=i)).isoformat(), "from": a, "to": b, "reason": "", "by": ""}
        for i, (a, b) in enumerate(
            [
                ("CREATED", "STORED"),
                ("STORED", "SUBMITTED"),
                ("SUBMITTED", "EXECUTION_COMPLETED"),
            ]
        )
    ]
    jobs = [
        Job.objects.create(
            tenant_id=reader[0],
            sub=reader[1],
            status="EXECUTION_COMPLETED",
            content_type="text/plain",
            input_size=16,
            blob_id=f"blob-{i}",
            remote_job_id=f"remote-{i}",
            history=[
                {"at": now.isoformat(), "from": None, "to": "CREATED", "reason": "", "by": ""},
                *history,
            ],
        )
        for i in range(LIST_JOBS)
    ]
    posters = [
        issue_token(tenant_id="apptime", sub=f"poster-{run}-{n}", lifetime_seconds=24 * 3600)
        for n in range(requests // POSTS_PER_OWNER + 2)
    ]
    return {"token": token, "job_id": str(jobs[0].id), "posters": posters}


def request_for(path: str, data: dict):
    """A function making request number `i` of `path` with the client."""
    if path == "healthz":
        return lambda client, i: client("GET", "/healthz")
    if path == "status":
        url = f"/api/v1/job/{data['job_id']}/status"
        return lambda client, i: client("GET", url, token=data["token"])
    if path == "post":
        posters = data["posters"]
        counter = iter(range(10**9))

        def post(client, i):
            token = posters[next(counter) // POSTS_PER_OWNER]
            return client("POST", "/api/v1/job", token=token, body=b"sixteen bytes!!\n")

        return post
    if path == "list":
        return lambda client, i: client("GET", "/api/v1/job", token=data["token"], query=LIST_QUERY)
    raise ValueError(path)


EXPECTED = {"healthz": 200, "status": 200, "post": 202, "list": 200}


def measure(client: Client, listener: DatabaseTime, path: str, send, requests: int) -> dict:
    app, cpu, wall, db_ms, commands = [], [], [], [], []
    for i in range(requests):
        micros0, commands0 = listener.read()
        cpu_started = time.thread_time()
        started = time.perf_counter()
        status, body = send(client, i)
        elapsed = time.perf_counter() - started
        cpu.append((time.thread_time() - cpu_started) * 1000)
        micros1, commands1 = listener.read()
        if status != EXPECTED[path]:
            raise RuntimeError(f"{path}: {status} {body[:300]!r}")
        waited = (micros1 - micros0) / 1e6
        wall.append(elapsed * 1000)
        app.append((elapsed - waited) * 1000)
        db_ms.append(waited * 1000)
        commands.append(commands1 - commands0)
    app.sort()
    return {
        "app_ms_median": round(statistics.median(app), 3),
        "app_ms_p90": round(app[int(len(app) * 0.9)], 3),
        "app_ms_mean": round(statistics.fmean(app), 3),
        "cpu_ms_median": round(statistics.median(cpu), 3),
        "wall_ms_median": round(statistics.median(wall), 3),
        "db_ms_median": round(statistics.median(db_ms), 3),
        "db_commands": statistics.median(commands),
    }


def profile(
    client: Client, path: str, send, requests: int, sort: str, top: int, dump: str | None
) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(requests):
        send(client, i)
    profiler.disable()
    if dump:
        profiler.dump_stats(dump)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per path and round")
    parser.add_argument("--warmup", type=int, default=200, help="per path, not measured")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--profile", choices=PATHS, help="profile this path instead")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (tottime, ...)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--dump", help="with --profile: also write the pstats file here")
    args = parser.parse_args(argv)
    paths = [args.profile] if args.profile else args.paths.split(",")

    listener = DatabaseTime()
    monitoring.register(listener)  # before any client exists: it applies to clients made after
    with tempfile.TemporaryDirectory(prefix="fs-apptime-") as tmp:
        work = Path(tmp)
        server = start_database(work)
        try:
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", verbosity=0, interactive=False)
            from frontservice.wsgi import application

            quiet_logs()
            client = Client(application)
            posts = args.requests * (1 if args.profile else args.repeat) + args.warmup
            data = prepare(client, posts)
            sends = {path: request_for(path, data) for path in paths}
            for path in paths:
                for i in range(args.warmup):
                    sends[path](client, i)
            if args.profile:
                print(
                    profile(
                        client,
                        args.profile,
                        sends[args.profile],
                        args.requests,
                        args.sort,
                        args.top,
                        args.dump,
                    )
                )
                return 0
            rounds: dict[str, list[dict]] = {path: [] for path in paths}
            for _ in range(args.repeat):
                for path in paths:
                    rounds[path].append(measure(client, listener, path, sends[path], args.requests))
        finally:
            server.stop()
    results = {
        path: {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
        | {"rounds": runs}
        for path, runs in rounds.items()
    }
    machine = (
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"app time per request, in-process ({machine}; "
        f"{args.requests} requests x {args.repeat} rounds)\n"
    )
    print(
        "| path | app ms median | app ms p90 | CPU ms median | wall ms median | db commands "
        "| db ms median |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path, r in results.items():
        print(
            f"| {path} | {r['app_ms_median']:.2f} | {r['app_ms_p90']:.2f} | "
            f"{r['cpu_ms_median']:.2f} | "
            f"{r['wall_ms_median']:.2f} | {r['db_commands']:g} | {r['db_ms_median']:.2f} |"
        )
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"apptime-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "machine": machine,
                "command": " ".join(sys.argv),
                "args": vars(args),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
