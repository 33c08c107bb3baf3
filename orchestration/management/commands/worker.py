"""`manage.py worker`: django-q2's qcluster, one per queue, supervised, and a stop signal ends
them in time.

Two queues (frontservice.broker.QUEUES), each with a cluster of its own: the jobs' steps, and the
webhook deliveries, which wait on receivers for up to their timeouts and so never hold a worker
that a job's step needs. By default the command runs both; `--queue jobs` or `--queue webhooks`
runs one, for hosts that scale them apart.

django-q2 stops by letting every worker finish the task it holds, however long that takes. A
deployment needs a bound: after Q_STOP_GRACE seconds the clusters' processes are killed. Their
tasks are not lost: the MongoDB broker delivers them again (after Q_RETRY), and with either
broker the reconciler re-enqueues jobs left in CREATED/STORED.

While it runs, the command watches each cluster and replaces it whole, alone, when a process
died in a way that wedges it, or when it makes no progress (orchestration/supervisor.py says
why and decides; SupervisedCluster below acts).
"""

import contextlib
import ctypes
import logging
import os
import signal
import threading
import time
import uuid
from multiprocessing import Event
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections
from django_q.cluster import Cluster, get_mp_context
from django_q.signals import pre_execute

from frontservice.broker import JOBS, QUEUES
from frontservice.health import queue_stats
from frontservice.metrics import serve_worker_metrics
from orchestration.dispatch import dispatch_pass
from orchestration.supervisor import (
    Observation,
    QueueWatch,
    Restart,
    Shared,
    SupervisedSentinel,
    restart_delay,
    restart_reason,
    task_started,
)

logger = logging.getLogger(__name__)


class Supervisor:
    """The command's clusters, one per queue: started, watched every second, and stopped
    together on a signal, within Q_STOP_GRACE."""

    def __init__(self, clusters: list["SupervisedCluster"], *, grace: float):
        self.clusters = clusters
        self.grace = grace
        self._deadline: threading.Timer | None = None
        # After the clusters: django-q2's Cluster() takes both signals for itself.
        signal.signal(signal.SIGTERM, self.sig_handler)
        signal.signal(signal.SIGINT, self.sig_handler)

    @property
    def stopping(self) -> bool:
        return self._deadline is not None

    def run(self) -> None:
        for cluster in self.clusters:
            if not self.stopping:
                cluster.start()
        while not self.stopping:
            time.sleep(_TICK)
            _reap_orphans(keep=self.sentinel_pids())
            for cluster in self.clusters:
                if self.stopping:
                    break
                cluster.tick(others=self.sentinel_pids(but=cluster))

    def sentinel_pids(self, *, but: "SupervisedCluster | None" = None) -> set[int]:
        return {c.sentinel.pid for c in self.clusters if c is not but and c.sentinel is not None}

    def sig_handler(self, signum, frame):
        if self._deadline is not None:
            # Stopping already. django-q2 would run stop() again inside the first stop(), in
            # this same thread: its stop_event.set() then waits forever on the lock the
            # interrupted call holds (Ctrl-C signals every process of the group and a
            # supervisor sends its own SIGTERM: two signals, and the worker never exited).
            logger.info("stopping already; signal %s ignored", signum)
            return
        self._deadline = threading.Timer(self.grace, self._kill_clusters)
        self._deadline.daemon = True
        self._deadline.start()
        logger.debug("got signal %s: stopping the clusters", signum)
        # Every cluster told first, then waited for: they stop at the same time, in one grace.
        for cluster in self.clusters:
            if cluster.stop_event is not None and cluster.running:
                cluster.stop_event.set()
        for cluster in self.clusters:
            if cluster.running:
                cluster.stop()

    def _kill_clusters(self) -> None:
        pids = _descendants(os.getpid())
        logger.error(
            "clusters still stopping %ss after the signal: killing %d processes; their tasks "
            "will be delivered again",
            self.grace,
            len(pids),
        )
        for pid in reversed(pids):  # children before parents, so none is reincarnated
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Normally stop() now returns, its sentinel gone. But when the signal reached every
        # process of the group (Ctrl-C in a terminal, a container runtime), a cluster process
        # may have died holding the lock of django-q2's shared stop/start Event, and this
        # process's stop() then waits on it forever. Nothing is left to wait for: exit.
        exit_timer = threading.Timer(_EXIT_AFTER_KILL, _exit_stuck)
        exit_timer.daemon = True
        exit_timer.start()


# Seconds stop() gets to return after the clusters' processes were killed.
_EXIT_AFTER_KILL = 3.0


def _exit_stuck() -> None:
    logger.error("the clusters' processes are gone but their stop did not return: exiting")
    logging.shutdown()
    os._exit(1)


def _descendants(pid: int, *, spare: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Every process below `pid` (from /proc), parents first, except those in `spare` and
    everything below them."""
    found: list[int] = []
    queue = [pid]
    while queue:
        children = [child for child in _children(queue.pop(0)) if child not in spare]
        found += children
        queue += children
    return found


# --- supervision ----------------------------------------------------------------------------

# Seconds between two looks at the cluster, and between two questions to the broker.
_TICK = 1.0
_QUEUE_EVERY = 5.0
# A cluster restarted before it ran this long counts as a quick restart (restart_delay).
_QUICK_RESTART = 60.0
_PR_SET_CHILD_SUBREAPER = 36


class SupervisedCluster(Cluster):
    """One queue's django-q2 cluster, whose sentinel reports to this process, which restarts
    it alone when it wedges."""

    def __init__(
        self, *, queue: str, workers: int, schedules: bool, stall_seconds: float, shared: Shared
    ):
        super().__init__()
        self.queue = queue
        self.workers = workers
        self.schedules = schedules
        self.stall_seconds = stall_seconds
        self.shared = shared
        self.started_at = 0.0
        self.restarts = 0
        self._quick_restarts = 0
        self._start_after: float | None = None  # a restart waiting for its delay
        self._queue = QueueWatch()
        self._queue_checked = 0.0

    @property
    def running(self) -> bool:
        return self.sentinel is not None and self.sentinel.is_alive()

    def start(self) -> int:
        # django-q2's Cluster.start, with SupervisedSentinel: the library names its Sentinel
        # class directly. It waits for the sentinel's start like the library does (polling: a
        # signal may arrive meanwhile); a sentinel that dies is left to tick().
        self.shared.reset()
        self.stop_event = Event()
        self.start_event = Event()
        self.sentinel = get_mp_context().Process(
            target=SupervisedSentinel,
            name=f"Process-{uuid.uuid4().hex}",
            args=(
                self.stop_event,
                self.start_event,
                self.cluster_id,
                self.timeout,
                self.shared,
                self.queue,
                self.workers,
                self.schedules,
            ),
        )
        with _fork_lock:  # never while the dispatcher's thread holds a lock
            self.sentinel.start()
        self.started_at = time.monotonic()
        self._start_after = None
        self._queue = QueueWatch()
        logger.info(
            "Q Cluster %s starting: queue %s, sentinel pid %d.",
            self.name,
            self.queue,
            self.sentinel.pid,
        )
        while self.start_event and not self.start_event.is_set() and self.sentinel.is_alive():
            time.sleep(0.1)
        return self.pid

    def tick(self, *, others: set[int]) -> None:
        """One look: start a restart whose delay is over, or restart when restart_reason says.
        `others`: the sentinels of the command's other clusters, which a restart spares."""
        if self._start_after is not None:
            if time.monotonic() >= self._start_after:
                self.cluster_id = uuid.uuid4()
                self.start()
            return
        decision = restart_reason(self._observe(), stall_seconds=self.stall_seconds)
        if decision is not None:
            self.restart(decision, others=others)

    def _observe(self) -> Observation:
        now = time.monotonic()
        if now - self._queue_checked >= _QUEUE_EVERY:
            self._queue_checked = now
            try:
                stats = queue_stats(self.queue)
            except Exception as exc:  # no verdict from the queue while the broker is away
                logger.warning("supervision: broker unavailable: %s", type(exc).__name__)
                stats = None
            self._queue.update(stats, now)
        return Observation(
            now=now,
            started_at=self.started_at,
            sentinel_exitcode=self.sentinel.exitcode,
            sentinel_beat=self.shared.sentinel_beat,
            death=self.shared.death(),
            last_task_started=self.shared.last_task_started,
            idle_workers=self.shared.idle_workers,
            waiting_since=self._queue.waiting_since,
        )

    def restart(self, decision: Restart, *, others: set[int]) -> None:
        """Kill what is left of this cluster by PID; a fresh one (new queues, new locks) starts
        after restart_delay, on a later tick, so the other clusters are watched meanwhile.

        Tasks in flight are delivered again (MongoDB broker, after Q_RETRY) or re-enqueued by
        the reconciler (Redis), as after any killed cluster.
        """
        lived = time.monotonic() - self.started_at
        self._quick_restarts = self._quick_restarts + 1 if lived < _QUICK_RESTART else 0
        delay = restart_delay(self._quick_restarts, cap=self.stall_seconds)
        self.restarts += 1
        logger.error(
            "restarting the %s cluster: %s",
            self.queue,
            decision.detail,
            extra={
                "event": "worker_cluster_restart",
                "queue": self.queue,
                "reason": decision.reason,
                "detail": decision.detail,
                "cluster": self.name,
                "cluster_lived_s": round(lived, 1),
                "restarts": self.restarts,
                "start_delay_s": delay,
            },
        )
        self._kill_now(others=others)
        self._start_after = time.monotonic() + delay

    def _kill_now(self, *, others: set[int]) -> None:
        # Stopped first, so the sentinel reincarnates nothing while its tree is listed; then its
        # processes, and the orphans of a sentinel that died (re-parented to this process, the
        # subreaper: any child of it that is no other cluster's sentinel).
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.sentinel.pid, signal.SIGSTOP)
        # Every process below the command but the other clusters' sentinels and their trees.
        for pid in reversed(_descendants(os.getpid(), spare=others)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sentinel.join(timeout=10)
        _reap_orphans(keep=others)


def _reap_orphans(*, keep: set[int]) -> None:
    """Collect the exit status of this process's children that multiprocessing does not own.

    As a subreaper, this process inherits the processes of a sentinel that died; once dead
    they would stay zombies. The current sentinels (`keep`) are multiprocessing's to wait for.
    """
    for pid in _children(os.getpid()):
        if pid in keep:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _become_subreaper() -> None:
    """Orphans below this process are re-parented to it, not to init (Linux prctl).

    A SIGKILLed sentinel leaves its workers, monitor and pusher behind; re-parented here they
    are still found in /proc below this process, and killed with the rest on a restart.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        logger.warning("not a child subreaper (errno %d)", ctypes.get_errno())


class Command(BaseCommand):
    help = (
        "Run a django-q2 cluster per queue (jobs, webhooks), each restarted whole when it "
        "wedges, that stop within Q_STOP_GRACE seconds of SIGTERM/SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--queue",
            action="append",
            choices=QUEUES,
            help="Run this queue's cluster only (repeatable; default: every queue).",
        )

    def handle(self, *args, **options):
        queues = [queue for queue in QUEUES if queue in (options["queue"] or QUEUES)]
        serve_worker_metrics()  # only with WORKER_METRICS_PORT (a worker host of its own)
        _become_subreaper()
        # Connected before the clusters fork, so every worker stamps the tasks it starts (in its
        # own cluster's shared memory).
        pre_execute.connect(task_started, weak=False, dispatch_uid="worker-supervision")
        clusters = [
            SupervisedCluster(
                queue=queue,
                workers=settings.Q_CLUSTER["workers"],
                # The schedules (the reconcilers) run where the jobs' cluster runs.
                schedules=queue == JOBS,
                stall_seconds=settings.WORKER_STALL_SECONDS,
                shared=Shared(),
            )
            for queue in queues
        ]
        supervisor = Supervisor(clusters, grace=settings.Q_STOP_GRACE)
        logger.info("supervising the clusters of the queues: %s", ", ".join(queues))
        start_dispatcher()
        supervisor.run()


# Held by the dispatcher during a pass and by every fork of a sentinel (the first one and each
# restart): a child forked while the dispatcher's thread held a lock (logging, the database
# client) would wait on it for ever. Between passes the thread only sleeps.
_fork_lock = threading.Lock()


def start_dispatcher() -> threading.Thread:
    """Run the dispatcher (orchestration/dispatch.py) every DISPATCH_INTERVAL_SECONDS in a daemon
    thread of this process, which outlives the cluster's children. Every worker runs one; their
    compare-and-set claims make that harmless."""
    thread = threading.Thread(target=_dispatch_loop, name="dispatcher", daemon=True)
    thread.start()
    return thread


def _dispatch_loop() -> None:
    while True:
        with _fork_lock:
            try:
                dispatch_pass()
            except Exception:
                # The database restarting, say: the next pass tries again.
                logger.exception("dispatch pass failed")
            finally:
                # This thread's database connection is closed between passes, as a request's is.
                connections.close_all()
        time.sleep(settings.DISPATCH_INTERVAL_SECONDS)
