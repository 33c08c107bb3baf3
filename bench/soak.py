"""Soak: many jobs through faulty downstream services and killed workers; none lost or doubled.

    .venv/bin/python bench/soak.py [--jobs 1000] [--clients 16] [--broker mongo|redis]
        [--kill-every 3] [--outage 120] [--deadline 900] [--job-delay 0.5] [--seed N] [--keep]
        [--env NAME=VALUE ...]

One stack in a temp dir (embedded MongoDB on SQLite, reference BlobService and JobService, the
API under gunicorn, TWO `manage.py worker` of 2 workers per cluster, sharing the queues), with
both reference services failing 10% of their API calls (503). Concurrent clients submit the
jobs (each POST with an Idempotency-Key, retried with the same key on 5xx, 409, 429 and
connection errors) and poll them until final; meanwhile, every --kill-every seconds, a busy
worker process is SIGKILLed, every 4th time (offset by 2) any one process of a cluster, and
every 4th time a whole cluster (its process tree, or its process group) is SIGKILLed and started
again (a cluster that exits by itself is started again too). Once half the jobs are submitted,
JobService is stopped for --outage seconds and started again. The operator's cron (`manage.py
reconcile` every 15 s) runs beside the clusters' own reconciler schedule. When every job is
final, or --deadline seconds after the last submission, the stored state is read (ORM, through
`manage.py shell`) and checked against the reference services' own records.

Prints a Markdown report and writes bench/results/soak-<timestamp>.json. Exits 1 when a job is
lost (not final), duplicated (two FrontService jobs for one key, a job executed twice by
JobService, a downstream id that is no FrontService job) or has a wrong output. Every process
it started is stopped by its PID, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.e2e import machine  # noqa: E402
from bench.stack import PYTHON, Stack, children, descendants  # noqa: E402

FINAL = frozenset(
    {"EXECUTION_COMPLETED", "EXECUTION_ERROR", "STORED_ERROR", "SUBMITTED_ERROR", "CANCELLED"}
)
STATUSES = ("CREATED", "STORED", "SUBMITTED", "CANCELLING", *sorted(FINAL))
REDIS_URL = "redis://127.0.0.1:6379/0"
CLUSTERS = ("cluster-a", "cluster-b")
TENANTS = 4
FAIL_RATE = 0.1
FAIL_SHARE = 0.02  # inputs starting with "#fail" (JobService fails them on purpose)
MIN_INPUT, MAX_INPUT = 100, 8 * 1024
CRON_EVERY = 15.0  # seconds between the operator's `manage.py reconcile` runs
CRON_TIMEOUT = 900.0  # one pass may take long on a loaded database; it is not cut short
WHOLE_CLUSTER_EVERY = 4  # every 4th kill takes a whole cluster down
REQUEST_TIMEOUT = 30.0
POST_GIVE_UP = 300.0  # a client stops retrying one POST after this long
PROGRESS_EVERY = 15.0
DEFAULT_POLL = 2.0  # seconds between status requests for a job when no Retry-After says

# The settings the soak runs with (see bench/README.md, "Soak").
SOAK_SETTINGS = {
    "MONGODB_NAME": "frontservice_soak",
    "Q_WORKERS": "2",
    "Q_TIMEOUT": "30",
    "Q_RETRY": "35",
    "Q_STOP_GRACE": "5",
    "DOWNSTREAM_READ_TIMEOUT": "5",
    # Retries are scheduled on the job (at most 5 s apart here), for the default hour: an outage
    # in the middle of the run is waited out, not turned into error states.
    "DOWNSTREAM_RETRY_CAP": "5",
    "RECONCILE_STUCK_AFTER": "40",
    "RECONCILE_REFRESH_AFTER": "10",
}


class Counters:
    """Thread-safe named counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


# --- clients ---------------------------------------------------------------------------------


@dataclass
class Submitted:
    """One job as its client knows it."""

    id: str
    key: str | None
    client: int
    size: int
    fail_marker: bool
    output_sha256: str  # what EXECUTION_COMPLETED must leave in BlobService (a-z uppercased)
    submitted_at: float
    last_status: str = "CREATED"
    final_at: float | None = None
    next_poll_at: float = 0.0  # monotonic time of the next status request


def make_input(rng: random.Random) -> bytes:
    alphabet = string.ascii_lowercase * 6 + string.ascii_uppercase + string.digits + " .,\n"
    body = "".join(rng.choices(alphabet, k=rng.randint(MIN_INPUT, MAX_INPUT)))
    if rng.random() < FAIL_SHARE:
        body = "#fail " + body[6:]
    return body.encode("ascii")


def retry_after(response: requests.Response, default: float = 1.0, cap: float = 60.0) -> float:
    try:
        return min(cap, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return default


def new_session(token: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # straight to 127.0.0.1, whatever proxy the environment sets
    session.headers["Authorization"] = f"Bearer {token}"
    return session


class Client(threading.Thread):
    """A user: submits its share of the jobs one after another, then polls them until final."""

    def __init__(self, number: int, *, soak: Soak, token: str, jobs: int, seed: int) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.number = number
        self.soak = soak
        self.session = new_session(token)
        self.to_submit = jobs
        self.rng = random.Random(seed)
        self.jobs: list[Submitted] = []
        self.keys: dict[str, set[str]] = {}  # Idempotency-Key -> job ids answered for it
        self.abandoned = 0  # POSTs given up (no job id ever answered)
        self.submitting_done = threading.Event()
        self.all_final = threading.Event()

    @property
    def api(self) -> str:
        return self.soak.stack.url("api")

    def run(self) -> None:
        try:
            for _ in range(self.to_submit):
                if self.soak.stop.is_set():
                    break
                self.submit(make_input(self.rng))
        finally:
            self.submitting_done.set()
        self.poll_until_final()

    # -- POST

    def submit(self, body: bytes, *, key: str | None = None) -> Submitted | None:
        counters = self.soak.counters
        if self.soak.use_idempotency_key and key is None:
            key = str(uuid.uuid4())
        headers = {"Content-Type": "text/plain"}
        if key is not None:
            headers["Idempotency-Key"] = key
        started = time.monotonic()
        attempt = 0
        wait = 0.0  # before the next attempt: Retry-After when the API gave one
        while not self.soak.stop.is_set():
            attempt += 1
            if attempt > 1:
                counters.add("post_retries")
                if time.monotonic() - started > POST_GIVE_UP:
                    break
                time.sleep(wait or min(5.0, 0.2 * 2 ** min(attempt, 5)) * self.rng.random())
                wait = 0.0
            try:
                response = self.session.post(
                    f"{self.api}/api/v1/job", data=body, headers=headers, timeout=REQUEST_TIMEOUT
                )
            except requests.RequestException as error:
                counters.add(f"post_error_{type(error).__name__}")
                continue
            counters.add(f"post_{response.status_code}")
            if response.status_code == 202:
                return self._accepted(response.json()["id"], key, body)
            if response.status_code == 429:  # rate limited: as asked, then the same request
                wait = retry_after(response)
                continue
            if response.status_code >= 500 or response.status_code == 409:
                continue  # 409: the first request with this key has no answer yet
            self.soak.note(f"POST answered {response.status_code}: {response.text[:300]}")
            break  # 422 and other 4xx: retrying the same request cannot help
        self.abandoned += 1
        counters.add("post_abandoned")
        return None

    def _accepted(self, job_id: str, key: str | None, body: bytes) -> Submitted:
        if key is not None:
            seen = self.keys.setdefault(key, set())
            if job_id in seen:  # a replay of a job this client already has
                return next(job for job in self.jobs if job.id == job_id)
            seen.add(job_id)
        job = Submitted(
            id=job_id,
            key=key,
            client=self.number,
            size=len(body),
            fail_marker=body.startswith(b"#fail"),
            output_sha256=hashlib.sha256(body.upper()).hexdigest(),
            submitted_at=time.monotonic(),
        )
        self.jobs.append(job)
        self.soak.submitted(job)
        return job

    # -- polling

    def poll_until_final(self) -> None:
        # Each job is asked about when its last answer's Retry-After says polling is useful
        # again (about a tenth of its age, 1-30 s), like a well-behaved client; polling every
        # pending job every second made the soak's own clients the database's biggest load.
        pending = [job for job in self.jobs if job.final_at is None]
        while pending and not self.soak.stop.is_set():
            now = time.monotonic()
            due = [job for job in pending if job.next_poll_at <= now]
            for job in due:
                if self.soak.stop.is_set():
                    return
                self.poll(job)
            pending = [job for job in pending if job.final_at is None]
            if pending:
                wake = min(job.next_poll_at for job in pending)
                self.soak.stop.wait(max(0.05, min(1.0, wake - time.monotonic())))
        if not pending:
            self.all_final.set()

    def poll(self, job: Submitted) -> None:
        counters = self.soak.counters
        job.next_poll_at = time.monotonic() + DEFAULT_POLL
        try:
            response = self.session.get(
                f"{self.api}/api/v1/job/{job.id}/status", timeout=REQUEST_TIMEOUT
            )
        except requests.RequestException as error:
            counters.add(f"status_error_{type(error).__name__}")
            return
        counters.add("status_requests")
        if response.status_code != 200:
            counters.add(f"status_{response.status_code}")
            if response.status_code == 429:  # rate limited: this client waits as asked
                self.soak.stop.wait(retry_after(response))
            return
        job.last_status = response.json()["status"]
        if job.last_status in FINAL:
            job.final_at = time.monotonic()
            self.soak.finished(job)
        elif "Retry-After" in response.headers:
            jitter = self.rng.uniform(0.9, 1.1)  # so a client's jobs spread out over time
            job.next_poll_at = time.monotonic() + retry_after(response, cap=30.0) * jitter


# --- chaos: which worker is busy -------------------------------------------------------------

READY = re.compile(r"(Process-[0-9a-f]+) ready for work at (\d+)")
PROCESSING = re.compile(r"(Process-[0-9a-f]+) processing (orchestrate-[0-9a-f-]{36})")
DONE = re.compile(r"(?:Processed|Failed) '[^']*' \((orchestrate-[0-9a-f-]{36})\)")
REINCARNATED = re.compile(r"reincarnated worker \S+ after (death|timeout)")
NOOP_DELIVERY = re.compile(r"job [0-9a-f-]{36}: not in flight")
REQUEUE = re.compile(r"job ([0-9a-f-]{36}): stuck in \w+ since .*; enqueued again")


class ClusterLog:
    """Follows one cluster's log: which worker process runs which orchestration task.

    A worker is busy from its `Process-… processing orchestrate-<id>` line until the monitor
    logs `Processed`/`Failed` for that task (tests/support/cluster.py reads the log the same
    way). The log is read incrementally, whole lines only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._line = 0
        self.pids: dict[str, int] = {}
        self.running: dict[str, tuple[str, int]] = {}  # worker -> (task, line it started)
        self.done: dict[str, int] = {}  # task -> line it last finished

    def update(self) -> None:
        try:
            with self.path.open("rb") as log:
                log.seek(self._offset)
                data = log.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._offset += end + 1
        for line in data[: end + 1].decode("utf-8", "replace").splitlines():
            self._line += 1
            if match := READY.search(line):
                self.pids[match.group(1)] = int(match.group(2))
            elif match := PROCESSING.search(line):
                self.running[match.group(1)] = (match.group(2), self._line)
            elif match := DONE.search(line):
                self.done[match.group(1)] = self._line

    def busy(self) -> list[tuple[str, int, str]]:
        """(worker name, pid, task) of every worker in the middle of an orchestration task."""
        self.update()
        found = []
        for name, (task, started) in self.running.items():
            if name in self.pids and self.done.get(task, -1) < started:
                found.append((name, self.pids[name], task))
        return found

    def forget(self, name: str) -> None:
        self.pids.pop(name, None)
        self.running.pop(name, None)


def blocked_reading_a_pipe(pid: int) -> bool:
    """Whether the process sits in read() on a pipe: a django-q2 worker idle in Queue.get().

    That worker holds the queue's read lock; SIGKILLing it would freeze its cluster (README,
    "Known limits"). A worker inside a task is elsewhere (sockets, sleep, running).
    """
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        if not fields or fields[0] != "0":  # 0 = read on x86_64
            return False
        return os.readlink(f"/proc/{pid}/fd/{int(fields[1], 16)}").startswith("pipe:")
    except (OSError, ValueError, IndexError):
        return True  # cannot tell (or gone): do not kill it


class Chaos(threading.Thread):
    """Every `every` seconds: SIGKILL a busy worker; every 4th time a whole cluster instead."""

    def __init__(self, soak: Soak, every: float, rng: random.Random) -> None:
        super().__init__(name="chaos", daemon=True)
        self.soak = soak
        self.every = every
        self.rng = rng
        self.logs = {name: ClusterLog(soak.stack.processes[name].log_path) for name in CLUSTERS}
        self.old_logs: list[Path] = []
        self.next_cluster = 0
        self.events: list[dict] = []

    def run(self) -> None:
        tick = 0
        while not self.soak.stop.wait(self.every):
            tick += 1
            try:
                self.supervise()
                if tick % WHOLE_CLUSTER_EVERY == 0:
                    self.kill_cluster()
                elif tick % WHOLE_CLUSTER_EVERY == 2:
                    self.kill_cluster_child()
                else:
                    self.kill_busy_worker()
            except Exception as error:  # the soak goes on; the report says what happened
                self.soak.counters.add("chaos_errors")
                self.soak.note(f"chaos: {error!r}")

    def supervise(self) -> None:
        """Start again a cluster that exited by itself (a supervisor would), and say so."""
        for cluster in CLUSTERS:
            process = self.soak.stack.processes[cluster]
            if process.alive:
                continue
            code = process.kill()  # only reaps it
            lines = process.log_path.read_text(errors="replace").strip().splitlines()
            self.soak.counters.add("cluster_exits")
            self.soak.note(
                f"a cluster exited by itself (code {code}) and was started again; "
                f"its last log line: {lines[-1][:200] if lines else '(empty log)'}"
            )
            self.old_logs.append(process.log_path)
            self.logs[cluster] = ClusterLog(self.soak.stack.start_worker(cluster).log_path)

    def kill_busy_worker(self) -> None:
        # Look for up to half the interval: tasks are short and workers are often idle.
        give_up = time.monotonic() + self.every / 2
        while not self.soak.stop.is_set():
            candidates = [
                (cluster, name, pid, task)
                for cluster, log in self.logs.items()
                for name, pid, task in log.busy()
            ]
            self.rng.shuffle(candidates)
            for cluster, name, pid, task in candidates:
                root = self.soak.stack.processes[cluster].pid
                if pid == root or pid not in descendants(root):
                    self.logs[cluster].forget(name)  # a worker that has gone
                    continue
                if blocked_reading_a_pipe(pid):
                    continue  # finished its task already: idle in Queue.get()
                os.kill(pid, signal.SIGKILL)
                self.logs[cluster].forget(name)
                self.soak.counters.add("kills_worker")
                self.events.append(
                    {"at": self.soak.elapsed(), "kind": "worker", "cluster": cluster, "pid": pid,
                     "task": task}
                )  # fmt: skip
                return
            if time.monotonic() > give_up:
                self.soak.counters.add("kills_worker_skipped_none_busy")
                return
            time.sleep(0.02)

    def kill_cluster_child(self) -> None:
        """SIGKILL any one process of a cluster below its sentinel: an idle or busy worker, the
        monitor or the pusher, as the OOM killer would. `manage.py worker` heals the cluster."""
        cluster = self.rng.choice(CLUSTERS)
        root = self.soak.stack.processes[cluster].pid
        sentinels = children(root)
        below = [pid for sentinel in sentinels for pid in children(sentinel)]
        if not below:
            self.soak.counters.add("kills_child_skipped_none_found")
            return
        pid = self.rng.choice(below)
        _signal(pid, signal.SIGKILL)
        self.soak.counters.add("kills_child")
        self.events.append(
            {"at": self.soak.elapsed(), "kind": "child", "cluster": cluster, "pid": pid}
        )

    def kill_cluster(self) -> None:
        """SIGKILL `manage.py worker` with every process below it, then start a fresh one, as a
        process manager restarting a crashed container would. Alternately the tree is frozen
        and killed process by process, or its whole process group is killed with one signal."""
        cluster = CLUSTERS[self.next_cluster % len(CLUSTERS)]
        self.next_cluster += 1
        stack = self.soak.stack
        process = stack.processes[cluster]
        tree = descendants(process.pid)
        if self.next_cluster % 4 in (1, 2):
            kind = "cluster"
            # Freeze the tree first, so the guard cannot reincarnate or fork while it dies.
            for pid in tree:
                _signal(pid, signal.SIGSTOP)
            tree = descendants(process.pid)
            for pid in tree:
                _signal(pid, signal.SIGKILL)
        else:
            kind = "process_group"  # the command leads a session of its own: one killpg
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.kill()  # reaps the leader
        self.old_logs.append(process.log_path)
        self.soak.counters.add(f"kills_{kind}")
        self.events.append(
            {"at": self.soak.elapsed(), "kind": kind, "cluster": cluster, "pids": tree}
        )
        # A supervisor restarts the crashed container.
        fresh = stack.start_worker(cluster)
        self.logs[cluster] = ClusterLog(fresh.log_path)

    def all_logs(self) -> list[Path]:
        return [*self.old_logs, *(log.path for log in self.logs.values())]


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


class Outage(threading.Thread):
    """JobService down for `seconds` in the middle: stopped (SIGTERM, by its PID) once half the
    jobs are submitted, started again on the same port and data afterwards.

    Its /_control/stats restart from zero, so the executions counted before the stop are kept
    here, with the jobs it was running then (a restarted JobService resumes them: one more
    execution each, not a duplicate).
    """

    def __init__(self, soak: Soak, seconds: float) -> None:
        super().__init__(name="outage", daemon=True)
        self.soak = soak
        self.seconds = seconds
        self.executions_before: Counter[str] = Counter()
        self.interrupted: set[str] = set()
        self.window: tuple[float, float] | None = None  # soak.elapsed() at stop and at start

    def run(self) -> None:
        soak = self.soak
        while not soak.stop.wait(0.5):
            if soak.submitted_count() * 2 >= soak.args.jobs:
                break
        if soak.stop.is_set():
            return
        stack = soak.stack
        stats = requests.get(f"{stack.url('job')}/_control/stats", timeout=10).json()
        self.executions_before.update(stats.get("executions", {}))
        stopped_at = soak.elapsed()
        stack.processes["job"].stop()
        for path in (stack.root / "jobservice" / "jobs").glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text()).get("status") == "RUNNING":
                    self.interrupted.add(path.stem)
        print(f"[{stopped_at:7.1f}s] JobService stopped for {self.seconds:g}s", file=sys.stderr)
        soak.stop.wait(self.seconds)
        if soak.stop.is_set():
            return
        stack.start_jobservice()
        soak.set_faults(("job",))
        self.window = (stopped_at, soak.elapsed())
        print(f"[{soak.elapsed():7.1f}s] JobService started again", file=sys.stderr, flush=True)


# --- the operator's cron ---------------------------------------------------------------------

CRON_REPORT = re.compile(
    r"(\d+) requeued, (\d+) refreshed, (?:\d+ cancels retried, )?(\d+) staged files removed"
)


class Cron(threading.Thread):
    """`manage.py reconcile` CRON_EVERY seconds after the previous pass ended (no overlap)."""

    def __init__(self, soak: Soak) -> None:
        super().__init__(name="cron", daemon=True)
        self.soak = soak
        self.requeued: list[str] = []
        self.errors: list[str] = []  # stderr tails of failed passes, for the JSON

    def run(self) -> None:
        while not self.soak.stop.wait(CRON_EVERY):
            code, out, err = self.soak.run_manage("reconcile", timeout=CRON_TIMEOUT)
            counters = self.soak.counters
            # Requeues are logged as they happen, so a pass that fails later still counts them.
            requeued = REQUEUE.findall(err)
            self.requeued += requeued
            counters.add("cron_requeued", len(requeued))
            match = CRON_REPORT.search(out) or CRON_REPORT.search(err)
            if code != 0 or not match:
                counters.add("cron_failures")
                self.soak.note(f"manage.py reconcile exited {code}: {_exception_lines(err)}")
                self.errors.append(err[-5000:])
                continue
            counters.add("cron_runs")
            counters.add("cron_refreshed", int(match.group(2)))
            counters.add("cron_staged_removed", int(match.group(3)))


def _exception_lines(stderr: str) -> str:
    """The exception lines of a traceback (each link of a chain), or the last line."""
    found = re.findall(r"^([\w.]+(?:Error|Exception|Timeout|Expired)\b.*)$", stderr, re.MULTILINE)
    lines = found or stderr.strip().splitlines()[-1:] or ["(no output)"]
    return " <- ".join(line[:200] for line in reversed(lines[-3:]))


# --- the soak --------------------------------------------------------------------------------


class Soak:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.stop = threading.Event()
        self.counters = Counters()
        self.notes: Counter[str] = Counter()
        self.use_idempotency_key = True
        self.idempotency_check = ""
        self.clients: list[Client] = []
        self.started = time.monotonic()
        self.first_submission: float | None = None
        self.last_submission: float | None = None
        self.last_final: float | None = None
        self._lock = threading.Lock()
        self._submitted = 0
        self._final = 0
        self._children: set[subprocess.Popen] = set()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def note(self, message: str) -> None:
        with self._lock:
            self.notes[message] += 1

    def submitted_count(self) -> int:
        with self._lock:
            return self._submitted

    def submitted(self, job: Submitted) -> None:
        with self._lock:
            self._submitted += 1
            self.first_submission = self.first_submission or job.submitted_at
            self.last_submission = job.submitted_at

    def finished(self, job: Submitted) -> None:
        with self._lock:
            self._final += 1
            self.last_final = job.final_at

    # -- subprocesses of the driver (stopped by PID too)

    def run_manage(self, *args: str, timeout: float) -> tuple[int, str, str]:
        process = subprocess.Popen(
            [PYTHON, "manage.py", *args],
            cwd=REPO,
            env={**os.environ, **self.stack.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with self._lock:
            self._children.add(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            return -1, out, f"timed out after {timeout}s\n{err}"
        finally:
            with self._lock:
                self._children.discard(process)
        return process.returncode, out, err

    def kill_children(self) -> None:
        with self._lock:
            children = list(self._children)
        for process in children:
            process.kill()
            process.wait()

    # -- phases

    def tokens(self) -> list[str]:
        """One token per client, each for its own sub, spread over a few tenants."""
        owners = [
            (f"soak-tenant-{n % TENANTS}", f"soak-client-{n:02d}") for n in range(self.args.clients)
        ]
        tokens: list[str | None] = [None] * len(owners)

        def issue(index: int) -> None:
            tenant, sub = owners[index]
            code, out, err = self.run_manage(
                "issue_token", "--tenant", tenant, "--sub", sub, "--lifetime", "86400", timeout=120
            )
            if code != 0:
                raise RuntimeError(f"issue_token failed: {err[-2000:]}")
            tokens[index] = out.strip()

        threads = [threading.Thread(target=issue, args=(n,)) for n in range(len(owners))]
        for batch in range(0, len(threads), 4):
            for thread in threads[batch : batch + 4]:
                thread.start()
            for thread in threads[batch : batch + 4]:
                thread.join()
        if not all(tokens):
            raise RuntimeError("some tokens could not be issued (see the errors above)")
        return tokens  # type: ignore[return-value]

    def database_ops(self) -> dict[str, int]:
        """The database server's operation counters (serverStatus), {} if unavailable."""
        from pymongo import MongoClient

        try:
            with MongoClient(self.stack.env["MONGODB_URI"], serverSelectionTimeoutMS=30000) as c:
                return dict(c.admin.command("serverStatus").get("opcounters", {}))
        except Exception as error:  # only reported
            self.note(f"serverStatus: {error!r}"[:300])
            return {}

    def set_faults(self, names: tuple[str, ...] = ("blob", "job")) -> None:
        # Each POST replaces the service's whole fault configuration.
        for name in names:
            base = self.stack.url(name)
            requests.post(f"{base}/_control/reset-stats", timeout=5).raise_for_status()
            response = requests.post(
                f"{base}/_control/faults",
                json={"fail_rate": FAIL_RATE, "status": 503},
                timeout=5,
            )
            response.raise_for_status()

    def check_idempotency_key(self, client: Client) -> None:
        """The client's first job is POSTed twice with one key: the second must be a replay."""
        body = make_input(client.rng)
        key = str(uuid.uuid4())
        headers = {"Content-Type": "text/plain", "Idempotency-Key": key}
        url = f"{client.api}/api/v1/job"
        first = client.session.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
        if first.status_code == 400:
            self.use_idempotency_key = False
            self.idempotency_check = (
                f"POST with Idempotency-Key answered 400 ({first.text[:200]}); header dropped"
            )
            return
        if first.status_code != 202:
            raise RuntimeError(f"first POST answered {first.status_code}: {first.text[:500]}")
        job = client._accepted(first.json()["id"], key, body)
        client.to_submit -= 1
        again = client.submit(body, key=key)  # the normal client path, retries included
        replayed = again is not None and again.id == job.id
        self.idempotency_check = (
            f"same key POSTed twice -> the same job {job.id}: replayed"
            if replayed
            else f"same key POSTed twice -> {job.id} then {again and again.id}: NOT replayed"
        )
        if not replayed:
            self.note("Idempotency-Key was not honoured by the preflight check")

    def run(self) -> None:
        args = self.args
        tokens = self.tokens()
        self.set_faults()
        shares = [
            args.jobs // args.clients + (1 if n < args.jobs % args.clients else 0)
            for n in range(args.clients)
        ]
        self.clients = [
            Client(n, soak=self, token=tokens[n], jobs=shares[n], seed=args.seed * 1000 + n)
            for n in range(args.clients)
        ]
        self.ops_before = self.database_ops()
        self.started = time.monotonic()
        self.check_idempotency_key(self.clients[0])
        chaos = Chaos(self, args.kill_every, random.Random(args.seed))
        cron = Cron(self)
        outage = Outage(self, args.outage)
        self.chaos, self.cron, self.outage = chaos, cron, outage
        for thread in (*self.clients, chaos, cron, *((outage,) if args.outage else ())):
            thread.start()
        next_progress = time.monotonic() + PROGRESS_EVERY
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            submitting = not all(c.submitting_done.is_set() for c in self.clients)
            if not submitting and all(c.all_final.is_set() for c in self.clients):
                break
            if not submitting and now > (self.last_submission or now) + args.deadline:
                self.note("deadline reached with jobs not final")
                break
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                self.progress()
        self.submission_seconds = (self.last_submission or 0) - (self.first_submission or 0)
        self.stopped_at = time.monotonic()
        ops_after = self.database_ops()
        self.database = {name: ops_after[name] - self.ops_before.get(name, 0) for name in ops_after}
        self.stop.set()
        for thread in (chaos, cron, *self.clients):
            thread.join(timeout=REQUEST_TIMEOUT + 5)
        if (
            outage.is_alive()
        ):  # stopped in the middle of the outage: JobService back for the verdict
            outage.join(timeout=REQUEST_TIMEOUT + 5)
        if not self.stack.processes["job"].alive:
            self.stack.start_jobservice()
        self.progress()

    def progress(self) -> None:
        c = self.counters
        with self._lock:
            submitted, final = self._submitted, self._final
        print(
            f"[{self.elapsed():7.1f}s] submitted {submitted}/{self.args.jobs}, final {final}, "
            f"kills {c['kills_worker']} workers + {c['kills_cluster']} clusters, "
            f"cron requeued {c['cron_requeued']}, POST retries {c['post_retries']}",
            file=sys.stderr,
            flush=True,
        )


# --- the verdict -----------------------------------------------------------------------------

DUMP_STATE = """
import json
from jobs.models import IdempotencyKey, Job
for job in Job.objects.all():
    print(json.dumps({"kind": "job", "id": str(job.id), "tenant_id": job.tenant_id,
        "sub": job.sub, "status": job.status, "attempts": job.attempts, "error": job.error,
        "transitions": [[h.get("from"), h.get("to")] for h in job.history]}, default=str))
for key in IdempotencyKey.objects.all():
    print(json.dumps({"kind": "key", "tenant_id": key.tenant_id, "sub": key.sub,
        "key": key.key, "job_id": str(key.job_id) if key.job_id else None,
        "response_status": key.response_status}, default=str))
"""


def stored_state(soak: Soak) -> tuple[dict[str, dict], list[dict]]:
    """Every FrontService job and idempotency record, read with the ORM."""
    code, out, err = soak.run_manage("shell", "--no-imports", "-c", DUMP_STATE, timeout=300)
    if code != 0:
        raise RuntimeError(f"reading the stored state failed:\n{err[-3000:]}")
    jobs, keys = {}, []
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if row.pop("kind") == "job":
            jobs[row["id"]] = row
        else:
            keys.append(row)
    return jobs, keys


def verdict(soak: Soak) -> dict:
    stack = soak.stack
    client_jobs = {job.id: job for client in soak.clients for job in client.jobs}
    db_jobs, db_keys = stored_state(soak)
    soak_jobs = {i: j for i, j in db_jobs.items() if j["tenant_id"].startswith("soak-")}

    # Lost: a job a client was given that is not final (or not stored at all).
    statuses = Counter(soak_jobs[i]["status"] if i in soak_jobs else "MISSING" for i in client_jobs)
    lost = sorted(i for i in client_jobs if soak_jobs.get(i, {}).get("status") not in FINAL)

    # Duplicates in FrontService: one key -> one job, and no job the clients were not given.
    key_to_ids: dict[str, set[str]] = {}
    for client in soak.clients:
        for key, ids in client.keys.items():
            key_to_ids.setdefault(key, set()).update(ids)
    keys_with_two_jobs = sorted(k for k, ids in key_to_ids.items() if len(ids) > 1)
    unknown_jobs = sorted(set(soak_jobs) - set(client_jobs))
    db_key_jobs = Counter(k["key"] for k in db_keys)

    # The reference services' own records.
    blob_ids = {p.name for p in (stack.root / "blobservice" / "blobs").glob("*")}
    remote_jobs = {}
    for path in (stack.root / "jobservice" / "jobs").glob("*.json"):
        remote_jobs[path.stem] = json.loads(path.read_text())
    job_stats = requests.get(f"{stack.url('job')}/_control/stats", timeout=10).json()
    blob_stats = requests.get(f"{stack.url('blob')}/_control/stats", timeout=10).json()
    # Executions over both lives of JobService (the outage restarts it); a job it was running
    # when stopped is executed once more when resumed, which is not a duplicate.
    executions = Counter(soak.outage.executions_before) + Counter(job_stats.get("executions", {}))
    executed_twice = {i: n for i, n in executions.items() if n > 1 + (i in soak.outage.interrupted)}
    stray_blobs = sorted(blob_ids - set(db_jobs))
    stray_remote_jobs = sorted(set(remote_jobs) - set(db_jobs))

    # Outcomes: the right output for every completed job, no "#fail" input completed, and
    # FrontService's final state agreeing with JobService's.
    wrong_output, fail_completed, disagree = [], [], []
    remote_of = {"EXECUTION_COMPLETED": {"SUCCEEDED"}, "EXECUTION_ERROR": {"FAILED", "CANCELLED"}}
    for job_id, job in client_jobs.items():
        status = soak_jobs.get(job_id, {}).get("status")
        if status == "EXECUTION_COMPLETED":
            blob = stack.root / "blobservice" / "blobs" / job_id
            digest = hashlib.sha256(blob.read_bytes()).hexdigest() if blob.exists() else None
            if digest != job.output_sha256:
                wrong_output.append(job_id)
            if job.fail_marker:
                fail_completed.append(job_id)
        remote = remote_jobs.get(job_id, {}).get("status")
        if status in remote_of and remote not in remote_of[status]:
            disagree.append(f"{job_id}: {status} here, {remote} in JobService")
    orphan_remote = sorted(
        i for i, j in soak_jobs.items() if j["status"] in {"STORED_ERROR", "SUBMITTED_ERROR"}
        and i in remote_jobs
    )  # fmt: skip

    errors = Counter()  # error states per cause (the stored error's message)
    for job in soak_jobs.values():
        if job["status"] in FINAL - {"EXECUTION_COMPLETED"}:
            message = (job.get("error") or {}).get("message") or "?"
            errors[f"{job['status']}: {_shorten(message)}"] += 1
    attempts = Counter(j["attempts"] for j in soak_jobs.values())

    # The clusters' own reconciler schedule, from their logs.
    scheduled_requeues = []
    reincarnations = Counter()
    deliveries: Counter[str] = Counter()  # orchestration task -> times a worker started it
    acknowledged = noop_deliveries = 0
    for path in soak.chaos.all_logs():
        text = path.read_text(errors="replace")
        scheduled_requeues += REQUEUE.findall(text)
        reincarnations.update(REINCARNATED.findall(text))
        deliveries.update(task for _, task in PROCESSING.findall(text))
        acknowledged += len(DONE.findall(text))
        noop_deliveries += len(NOOP_DELIVERY.findall(text))

    duplicates = {
        "frontservice_jobs_per_key_over_1": len(keys_with_two_jobs),
        "frontservice_jobs_no_client_was_given": len(unknown_jobs),
        "jobservice_jobs_executed_more_than_once": len(executed_twice),
        "stray_blobs": len(stray_blobs),
        "stray_jobservice_jobs": len(stray_remote_jobs),
    }
    # Submission to final as the clients saw it; the slowest jobs with their stored history.
    latencies = sorted(
        (job.final_at - job.submitted_at, job.id) for job in client_jobs.values() if job.final_at
    )
    slowest = [
        {"id": job_id, "seconds": round(seconds, 1), **soak_jobs.get(job_id, {})}
        for seconds, job_id in latencies[-10:][::-1]
    ]
    counters = soak.counters.snapshot()
    load_seconds = soak.stopped_at - soak.started
    database_ops = sum(soak.database.values())
    elapsed_to_final = (soak.last_final or soak.stopped_at) - (soak.first_submission or 0)
    return {
        "submitted": len(client_jobs),
        "requested": soak.args.jobs,
        "posts_abandoned": sum(c.abandoned for c in soak.clients),
        "statuses": {s: statuses[s] for s in (*STATUSES, "MISSING") if statuses[s]},
        "lost": len(lost),
        "lost_ids": lost,
        "lost_detail": {i: soak_jobs.get(i) for i in lost[:50]},
        "duplicates": sum(duplicates.values()),
        "duplicates_detail": duplicates,
        "duplicate_ids": {
            "keys_with_two_jobs": keys_with_two_jobs,
            "unknown_jobs": unknown_jobs,
            "executed_twice": executed_twice,
            "stray_blobs": stray_blobs,
            "stray_jobservice_jobs": stray_remote_jobs,
        },
        "wrong_outputs": len(wrong_output) + len(fail_completed),
        "wrong_output_ids": wrong_output,
        "fail_marker_completed_ids": fail_completed,
        "state_disagreements": disagree,
        "idempotency": {
            "header_used": soak.use_idempotency_key,
            "check": soak.idempotency_check,
            "distinct_keys_answered": len(key_to_ids),
            "frontservice_jobs": len(soak_jobs),
            "key_records": len(db_keys),
            "key_records_for_one_key_over_1": sum(1 for n in db_key_jobs.values() if n > 1),
        },
        "downstream": {
            "blobs": len(blob_ids),
            "jobservice_jobs": len(remote_jobs),
            "jobservice_statuses": dict(Counter(j["status"] for j in remote_jobs.values())),
            "executions": sum(executions.values()),
            "jobs_executed": len(executions),
            "faults_injected": {
                "blob": blob_stats.get("faults_injected"),
                "job": job_stats.get("faults_injected"),
            },
            "requests": {"blob": blob_stats.get("requests"), "job": job_stats.get("requests")},
            "remote_jobs_of_jobs_in_an_error_state_before_execution": orphan_remote,
        },
        "outage": {
            "seconds": soak.args.outage,
            "window_s": soak.outage.window,
            "jobs_running_in_jobservice_when_stopped": len(soak.outage.interrupted),
        },
        "errors": dict(errors.most_common()),
        "attempts": {str(k): v for k, v in sorted(attempts.items())},
        "reconciler": {
            "cron_runs": counters.get("cron_runs", 0),
            "cron_failures": counters.get("cron_failures", 0),
            "cron_requeued": counters.get("cron_requeued", 0),
            "cron_refreshed": counters.get("cron_refreshed", 0),
            "cron_staged_removed": counters.get("cron_staged_removed", 0),
            "schedule_requeued": len(scheduled_requeues),
            "requeued_jobs": len(set(soak.cron.requeued) | set(scheduled_requeues)),
            "cron_errors": soak.cron.errors,
        },
        "chaos": {
            "worker_kills": counters.get("kills_worker", 0),
            "cluster_kills": counters.get("kills_cluster", 0),
            "process_group_kills": counters.get("kills_process_group", 0),
            "child_kills": counters.get("kills_child", 0),
            "worker_kills_skipped_none_busy": counters.get("kills_worker_skipped_none_busy", 0),
            "chaos_errors": counters.get("chaos_errors", 0),
            "clusters_that_exited_by_themselves": counters.get("cluster_exits", 0),
            "reincarnations_logged": dict(reincarnations),
            "task_deliveries": sum(deliveries.values()),
            "tasks_delivered": len(deliveries),
            "most_deliveries_of_one_task": max(deliveries.values(), default=0),
            "deliveries_for_jobs_already_done": noop_deliveries,
            "task_results_saved_and_acknowledged": acknowledged,
            "events": soak.chaos.events,
        },
        "client": {
            "post_retries": counters.get("post_retries", 0),
            "post_409": counters.get("post_409", 0),
            "post_422": counters.get("post_422", 0),
            "post_429": counters.get("post_429", 0),
            "status_429": counters.get("status_429", 0),
            "counters": counters,
        },
        "database": {
            "ops": soak.database,
            "ops_per_s": round(database_ops / max(load_seconds, 1e-9), 1),
        },
        "timing": {
            "submission_s": round(soak.submission_seconds, 1),
            "submitted_per_s": round(len(client_jobs) / max(soak.submission_seconds, 1e-9), 1),
            "first_submission_to_last_final_s": round(elapsed_to_final, 1),
            "latency_s": {
                "p50": _percentile([x for x, _ in latencies], 0.5),
                "p95": _percentile([x for x, _ in latencies], 0.95),
                "max": _percentile([x for x, _ in latencies], 1.0),
            },
            "final_per_s": round(
                sum(1 for j in client_jobs.values() if j.final_at) / max(elapsed_to_final, 1e-9),
                1,
            ),
        },
        "slowest_jobs": slowest,
        "notes": dict(soak.notes),
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def _shorten(message: str) -> str:
    # Job ids and ports vary; the kind of failure is what counts.
    message = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", message)
    message = re.sub(r"127\.0\.0\.1:\d+", "<host>", message)
    return message[:120]


# --- reporting -------------------------------------------------------------------------------


def markdown(result: dict, host: dict, argv: list[str]) -> str:
    r = result
    d, dd, idem = r["duplicates_detail"], r["downstream"], r["idempotency"]
    rec, chaos, client, t = r["reconciler"], r["chaos"], r["client"], r["timing"]
    rows = [
        ("jobs submitted (unique ids answered)", f"{r['submitted']} of {r['requested']}"),
        *((f"— {status}", n) for status, n in r["statuses"].items()),
        ("**lost** (not final at the end)", f"**{r['lost']}**"),
        ("**duplicates**", f"**{r['duplicates']}**"),
        ("— FrontService jobs for one Idempotency-Key > 1", d["frontservice_jobs_per_key_over_1"]),
        ("— FrontService jobs no client was answered", d["frontservice_jobs_no_client_was_given"]),
        ("— JobService jobs executed more than once", d["jobservice_jobs_executed_more_than_once"]),
        (
            "— blobs / JobService jobs of no FrontService job",
            f"{d['stray_blobs']} / {d['stray_jobservice_jobs']}",
        ),
        ("wrong outputs (not the input uppercased; `#fail` completed)", r["wrong_outputs"]),
        ("FrontService vs JobService final state disagreements", len(r["state_disagreements"])),
        ("Idempotency-Key check", idem["check"] or "not checked"),
        (
            "distinct keys answered / FrontService jobs / key records",
            f"{idem['distinct_keys_answered']} / {idem['frontservice_jobs']} "
            f"/ {idem['key_records']}",
        ),
        (
            "BlobService blobs / JobService jobs / executions (jobs executed)",
            f"{dd['blobs']} / {dd['jobservice_jobs']} / {dd['executions']} ({dd['jobs_executed']})",
        ),
        (
            "faults injected: BlobService / JobService",
            f"{dd['faults_injected']['blob']} / {dd['faults_injected']['job']}",
        ),
        (
            "client POST retries / 409 / 422 / abandoned",
            f"{client['post_retries']} / {client['post_409']} / {client['post_422']} "
            f"/ {r['posts_abandoned']}",
        ),
        (
            "rate limited (429): POST / status polls",
            f"{client['post_429']} / {client['status_429']}",
        ),
        (
            "SIGKILLs: busy workers / any cluster child / whole trees / process groups",
            f"{chaos['worker_kills']} / {chaos['child_kills']} / {chaos['cluster_kills']} "
            f"/ {chaos['process_group_kills']}",
        ),
        (
            "JobService outage: s down (window) / jobs it was running",
            f"{r['outage']['seconds']:g} ({r['outage']['window_s']}) "
            f"/ {r['outage']['jobs_running_in_jobservice_when_stopped']}",
        ),
        ("worker kills skipped (no busy worker found)", chaos["worker_kills_skipped_none_busy"]),
        (
            "clusters that exited by themselves (restarted)",
            chaos["clusters_that_exited_by_themselves"],
        ),
        (
            "task deliveries (tasks) / of jobs already done / acknowledged / most of one task",
            f"{chaos['task_deliveries']} ({chaos['tasks_delivered']}) "
            f"/ {chaos['deliveries_for_jobs_already_done']} "
            f"/ {chaos['task_results_saved_and_acknowledged']} "
            f"/ {chaos['most_deliveries_of_one_task']}",
        ),
        (
            "reconciler requeues: cron / schedule (distinct jobs)",
            f"{rec['cron_requeued']} / {rec['schedule_requeued']} ({rec['requeued_jobs']})",
        ),
        (
            "reconciler cron runs (failed) / refreshed / staged removed",
            f"{rec['cron_runs']} ({rec['cron_failures']}) / {rec['cron_refreshed']} "
            f"/ {rec['cron_staged_removed']}",
        ),
        (
            "task deliveries per job (attempts: jobs)",
            ", ".join(f"{k}: {v}" for k, v in r["attempts"].items()),
        ),
        ("submission: s, jobs/s", f"{t['submission_s']}, {t['submitted_per_s']}"),
        (
            "first submission to last final: s, jobs/s",
            f"{t['first_submission_to_last_final_s']}, {t['final_per_s']}",
        ),
        (
            "submission to final (as polled): p50 / p95 / max s",
            f"{t['latency_s']['p50']} / {t['latency_s']['p95']} / {t['latency_s']['max']}",
        ),
        (
            "database operations during the load (per s)",
            f"{sum(r['database']['ops'].values())} ({r['database']['ops_per_s']})",
        ),
        ("wall time (stack start to report) s", r["wall_s"]),
    ]
    lines = [
        f"## Soak: {r['submitted']} jobs, broker {r['settings']['broker']}: "
        f"{'PASS' if r['passed'] else 'FAIL'}",
        "",
        f"Command: `{' '.join(argv)}`  ",
        f"Machine: nproc {host['nproc']}, {host['mem_total_gib']} GiB RAM, "
        f"Python {host['python']}, {host['uname']}",
        "",
        "| | |",
        "|---|---:|",
        *(f"| {label} | {value} |" for label, value in rows),
    ]
    if r["errors"]:
        lines += ["", "Error states, by message:", ""]
        lines += [f"- {n} x {message}" for message, n in r["errors"].items()]
    if r["notes"]:
        lines += ["", "Notes:", ""]
        lines += [f"- {n} x {message}" for message, n in r["notes"].items()]
    if r["lost"]:
        lines += ["", f"Lost jobs (first 10 of {r['lost']}): {', '.join(r['lost_ids'][:10])}"]
    return "\n".join(lines)


def write_json(result: dict, host: dict, argv: list[str]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPO / "bench" / "results" / f"soak-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"created_at": stamp, "command": argv, "machine": host, **result}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs to submit (default 1000)")
    parser.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--broker", choices=("mongo", "redis"), default="mongo")
    parser.add_argument(
        "--kill-every", type=float, default=3, help="seconds between kills (default 3)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=900,
        help="seconds after the last submission before the report (default 900)",
    )
    parser.add_argument(
        "--job-delay", type=float, default=0.5, help="JobService --delay (default 0.5)"
    )
    parser.add_argument(
        "--outage",
        type=float,
        default=120,
        help="seconds JobService is down once half the jobs are submitted (default 120; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=1, help="inputs and chaos choices")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every process of the stack (repeatable), "
        "e.g. --env RECONCILE_BATCH=100",
    )
    args = parser.parse_args(argv)
    try:
        args.env = dict(item.split("=", 1) for item in args.env)
    except ValueError:
        parser.error("--env takes NAME=VALUE")
    if args.jobs < 1 or args.clients < 1 or args.kill_every <= 0 or args.deadline <= 0:
        parser.error("--jobs, --clients, --kill-every and --deadline must be positive")
    return args


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process we started.
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    command = [sys.executable, *sys.argv]
    host = machine()
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="frontservice-soak-"))
    cluster_name = f"fs-soak-{uuid.uuid4().hex[:8]}"
    settings = {
        **SOAK_SETTINGS,
        "Q_CLUSTER_NAME": cluster_name,
        "REDIS_URL": REDIS_URL if args.broker == "redis" else "",
        **args.env,
    }
    stack = Stack(root=root, workers=CLUSTERS, settings=settings, job_delay=args.job_delay)
    soak = Soak(stack, args)
    keep = args.keep
    result = None
    try:
        print(f"starting the stack in {root} ...", file=sys.stderr, flush=True)
        stack.start()
        soak.run()
        result = verdict(soak)
    except KeyboardInterrupt:
        print("interrupted; every started process was stopped", file=sys.stderr)
        keep = True
        return 130
    except Exception:
        keep = True  # the process logs (<root>/logs/<name>-*.log) explain the failure
        raise
    finally:
        soak.stop.set()
        soak.kill_children()
        stack.stop()
        if args.broker == "redis":
            _drop_redis_queue(cluster_name)
        if result is not None:
            result["passed"] = not (
                result["lost"] or result["duplicates"] or result["wrong_outputs"]
            )
            keep = keep or not result["passed"]
        if keep:
            print(f"kept {root} (process logs in {stack.log_dir})", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["settings"] = {
        "broker": args.broker,
        **{k: v for k, v in vars(args).items() if k != "broker"},
        "env": settings,
        "fail_rate": FAIL_RATE,
        "clusters": list(CLUSTERS),
        "cron_every_s": CRON_EVERY,
        "kept": str(root) if keep else None,
    }
    print(markdown(result, host, command))
    print(f"\nwritten {write_json(result, host, command)}")
    return 0 if result["passed"] else 1


def _drop_redis_queue(cluster_name: str) -> None:
    """Remove what is left of this run's queues (the jobs' and the webhooks', named after its
    unique cluster name) from the shared Redis."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL).delete(
            f"django_q:{cluster_name}:q", f"django_q:{cluster_name}-webhooks:q"
        )
    except Exception as error:  # only tidying up
        print(f"could not drop the Redis queue: {error!r}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
