"""`manage.py worker`: django-q2's qcluster, but a stop signal ends it within a grace period.

django-q2 stops by letting every worker finish the task it holds, however long that takes. A
deployment needs a bound: after Q_STOP_GRACE seconds the cluster's processes are killed. Their
tasks are not lost: the MongoDB broker delivers them again (after Q_RETRY), and with either
broker the reconciler re-enqueues jobs left in CREATED/STORED.
"""

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections
from django_q.cluster import Cluster

from frontservice.metrics import serve_worker_metrics
from orchestration.dispatch import dispatch_pass

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
        parent = queue.pop(0)
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


class Command(BaseCommand):
    help = "Run a django-q2 cluster that stops within Q_STOP_GRACE seconds of SIGTERM/SIGINT."

    def handle(self, *args, **options):
        serve_worker_metrics()  # only with WORKER_METRICS_PORT (a worker host of its own)
        cluster = GracefulCluster(grace=settings.Q_STOP_GRACE)
        start_dispatcher(cluster)
        cluster.start()


def start_dispatcher(cluster: Cluster) -> threading.Thread:
    """Run the dispatcher (orchestration/dispatch.py) every DISPATCH_INTERVAL_SECONDS in a daemon
    thread of this process, which outlives the cluster's children. Every worker runs one; their
    compare-and-set claims make that harmless."""
    thread = threading.Thread(
        target=_dispatch_loop, args=(cluster,), name="dispatcher", daemon=True
    )
    thread.start()
    return thread


def _dispatch_loop(cluster: Cluster) -> None:
    # Not a lock taken (logging, the database client) until the cluster has forked its sentinel:
    # a child forked while this thread held one would wait on it for ever.
    while not (cluster.start_event is not None and cluster.start_event.is_set()):
        time.sleep(0.1)
    while True:
        try:
            dispatch_pass()
        except Exception:
            # The database restarting, say: the next pass tries again.
            logger.exception("dispatch pass failed")
        finally:
            # This thread's database connection is closed between passes, as a request's is.
            connections.close_all()
        time.sleep(settings.DISPATCH_INTERVAL_SECONDS)
