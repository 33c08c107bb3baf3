"""`manage.py worker`: django-q2's qcluster, supervised, and a stop signal ends it in time.

django-q2 stops by letting every worker finish the task it holds, however long that takes. A
deployment needs a bound: after Q_STOP_GRACE seconds the cluster's processes are killed. Their
tasks are not lost: the MongoDB broker delivers them again (after Q_RETRY), and with either
broker the reconciler re-enqueues jobs left in CREATED/STORED.

While it runs, the command watches its cluster and replaces it whole when a process died in a
way that wedges it, or when it makes no progress (orchestration/supervisor.py says why and
decides; SupervisedCluster below acts).
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
)

logger = logging.getLogger(__name__)


class GracefulCluster(Cluster):
    def __init__(self, *, grace: float):
        super().__init__()
        self.grace = grace
        self._deadline: threading.Timer | None = None

    def sig_handler(self, signum, frame):
        if self._deadline is not None:
            # Stopping already. django-q2 would run stop() again inside the first stop(), in
            # this same thread: its stop_event.set() then waits forever on the lock the
            # interrupted call holds (Ctrl-C signals every process of the group and a
            # supervisor sends its own SIGTERM: two signals, and the worker never exited).
            logger.info("stopping already; signal %s ignored", signum)
            return
        self._deadline = threading.Timer(self.grace, self._kill_cluster)
        self._deadline.daemon = True
        self._deadline.start()
        super().sig_handler(signum, frame)

    def _kill_cluster(self) -> None:
        pids = _descendants(os.getpid())
        logger.error(
            "cluster still stopping %ss after the signal: killing %d processes; their tasks "
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


# Seconds stop() gets to return after the cluster's processes were killed.
_EXIT_AFTER_KILL = 3.0


def _exit_stuck() -> None:
    logger.error("the cluster's processes are gone but its stop did not return: exiting")
    logging.shutdown()
    os._exit(1)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc), parents first."""
    found: list[int] = []
    queue = [pid]
    while queue:
        children = _children(queue.pop(0))
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


class SupervisedCluster(GracefulCluster):
    """A GracefulCluster whose sentinel reports to this process, which restarts it when wedged."""

    def __init__(self, *, grace: float, stall_seconds: float, shared: Shared):
        super().__init__(grace=grace)
        self.stall_seconds = stall_seconds
        self.shared = shared
        self.started_at = 0.0
        self.restarts = 0
        self._quick_restarts = 0
        self._queue = QueueWatch()
        self._queue_checked = 0.0

    @property
    def stopping(self) -> bool:
        return self._deadline is not None

    def start(self) -> int:
        # django-q2's Cluster.start, with SupervisedSentinel: the library names its Sentinel
        # class directly. It waits for the sentinel's start like the library does (polling: a
        # signal may arrive meanwhile); a sentinel that dies is left to supervise().
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
                self.broker,
                self.timeout,
                self.shared,
            ),
        )
        with _fork_lock:  # never while the dispatcher's thread holds a lock
            self.sentinel.start()
        self.started_at = time.monotonic()
        logger.info("Q Cluster %s starting.", self.name)
        while self.start_event and not self.start_event.is_set() and self.sentinel.is_alive():
            time.sleep(0.1)
        return self.pid

    def supervise(self) -> None:
        """Watch the cluster until a stop signal; restart it whole when restart_reason says."""
        while not self.stopping:
            time.sleep(_TICK)
            if self.stopping:
                break
            _reap_orphans(keep=self.sentinel.pid)
            decision = restart_reason(self._observe(), stall_seconds=self.stall_seconds)
            if decision is not None:
                self.restart(decision)

    def _observe(self) -> Observation:
        now = time.monotonic()
        if now - self._queue_checked >= _QUEUE_EVERY:
            self._queue_checked = now
            try:
                stats = queue_stats()
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

    def restart(self, decision: Restart) -> None:
        """Kill what is left of the cluster by PID and start a fresh one (new queues, new locks).

        Tasks in flight are delivered again (MongoDB broker, after Q_RETRY) or re-enqueued by
        the reconciler (Redis), as after any killed cluster.
        """
        lived = time.monotonic() - self.started_at
        self._quick_restarts = self._quick_restarts + 1 if lived < _QUICK_RESTART else 0
        delay = restart_delay(self._quick_restarts, cap=self.stall_seconds)
        self.restarts += 1
        logger.error(
            "restarting the cluster: %s",
            decision.detail,
            extra={
                "event": "worker_cluster_restart",
                "reason": decision.reason,
                "detail": decision.detail,
                "cluster": self.name,
                "cluster_lived_s": round(lived, 1),
                "restarts": self.restarts,
                "start_delay_s": delay,
            },
        )
        self._kill_cluster_now()
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(0.1)
        if self.stopping:  # a stop signal came meanwhile: nothing to start
            return
        self.cluster_id = uuid.uuid4()
        self.start()

    def _kill_cluster_now(self) -> None:
        # Stopped first, so the sentinel reincarnates nothing while its tree is listed; then every
        # process below this one (orphans of a dead sentinel are ours too: subreaper).
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.sentinel.pid, signal.SIGSTOP)
        for pid in reversed(_descendants(os.getpid())):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sentinel.join(timeout=10)
        _reap_orphans(keep=None)


def _reap_orphans(*, keep: int | None) -> None:
    """Collect the exit status of this process's children that multiprocessing does not own.

    As a subreaper, this process inherits the processes of a sentinel that died; once dead
    they would stay zombies. The current sentinel (`keep`) is multiprocessing's to wait for.
    """
    for pid in _children(os.getpid()):
        if pid == keep:
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
        "Run a django-q2 cluster, restarted whole when it wedges, that stops within "
        "Q_STOP_GRACE seconds of SIGTERM/SIGINT."
    )

    def handle(self, *args, **options):
        serve_worker_metrics()  # only with WORKER_METRICS_PORT (a worker host of its own)
        _become_subreaper()
        shared = Shared()
        # Connected before the cluster forks, so every worker stamps the tasks it starts.
        pre_execute.connect(shared.task_started, weak=False, dispatch_uid="worker-supervision")
        cluster = SupervisedCluster(
            grace=settings.Q_STOP_GRACE,
            stall_seconds=settings.WORKER_STALL_SECONDS,
            shared=shared,
        )
        start_dispatcher()
        cluster.start()
        cluster.supervise()


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
