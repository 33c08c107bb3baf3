"""How `manage.py worker` tells that its django-q2 cluster needs a restart, and what it watches.

Why a restart and not django-q2's reincarnation: the cluster's processes talk through
`multiprocessing.Queue`s, and a process blocked in `Queue.get()` holds that queue's read lock
for as long as it waits. An idle worker (blocked on the task queue) or the monitor (blocked on
the result queue) that is SIGKILLed dies holding it, and its reincarnation, like every other
reader, then waits on the lock for ever: the cluster takes no task again. The pusher writes
to the task queue under its write lock the same way. Nothing can release a lock whose holder
is gone, so the cluster is replaced whole: new processes, new queues, new locks.

A busy worker (inside a task) holds no queue lock, and django-q2's reincarnation is safe for
it; restarting the cluster for it would also kill the tasks of the other workers. So:

- the sentinel (SupervisedSentinel, django-q2's own with two hooks) reports the death of the
  monitor, of the pusher or of an idle worker in memory shared with the command, and stamps a
  heartbeat on every cycle of its guard loop;
- every worker stamps the time it starts a task (django-q2's `pre_execute` signal);
- the command reads them every second, with the oldest waiting task of the cluster's own
  queue, and `restart_reason()` decides. The progress rule is the backstop for what no death
  report covers, such as a worker killed while it held a lock the sentinel then waits on.

The command runs one cluster per queue (frontservice.broker.QUEUES), each with its own shared
memory, watched and restarted on its own: a wedged webhooks cluster leaves the jobs' running.

The shared memory is raw (no lock): a lock held by a process that is SIGKILLed would wedge its
reader, the very failure this watches for. Each field is one aligned word, written by one
kind of process.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass

from django_q.brokers import get_broker
from django_q.cluster import Sentinel
from django_q.conf import Conf

from frontservice.broker import queue_key, serve_queue

# What died, as reported by the sentinel (0: nothing reported).
NOTHING, MONITOR, PUSHER, IDLE_WORKER = 0, 1, 2, 3
ROLE_NAMES = {MONITOR: "monitor", PUSHER: "pusher", IDLE_WORKER: "idle worker"}

# django-q2's worker timer (worker.py): -1 idle, -2 recycled, 0 timed out, > 0 inside a task.
_IDLE, _RECYCLED, _TIMED_OUT = -1, -2, 0


class Shared:
    """Memory shared by the command and every process of its cluster (they are forked from it).

    Times are `time.monotonic()`, one clock for every process of a host.
    """

    def __init__(self) -> None:
        self._sentinel_beat = multiprocessing.RawValue("d", 0.0)
        self._task_started = multiprocessing.RawValue("d", 0.0)
        self._idle_workers = multiprocessing.RawValue("i", -1)  # -1: not counted yet
        self._death_role = multiprocessing.RawValue("i", NOTHING)
        self._death_pid = multiprocessing.RawValue("i", 0)
        self._death_exitcode = multiprocessing.RawValue("i", 0)

    def reset(self) -> None:
        """Before a cluster starts: nothing seen of it yet."""
        self._sentinel_beat.value = 0.0
        self._task_started.value = 0.0
        self._idle_workers.value = -1
        self._death_role.value = NOTHING

    # -- written by the cluster's processes

    def beat(self, idle_workers: int) -> None:
        self._idle_workers.value = idle_workers
        self._sentinel_beat.value = time.monotonic()

    def task_started(self) -> None:
        self._task_started.value = time.monotonic()

    def report_death(self, role: int, pid: int, exitcode: int | None) -> None:
        if self._death_role.value != NOTHING:
            return  # the first death is the reason; the restart covers the others
        self._death_pid.value = pid
        self._death_exitcode.value = exitcode if exitcode is not None else 0
        self._death_role.value = role  # last: the command reads the role first

    # -- read by the command

    def death(self) -> Death | None:
        role = self._death_role.value
        if role == NOTHING:
            return None
        return Death(role=role, pid=self._death_pid.value, exitcode=self._death_exitcode.value)

    @property
    def sentinel_beat(self) -> float:
        return self._sentinel_beat.value

    @property
    def last_task_started(self) -> float:
        return self._task_started.value

    @property
    def idle_workers(self) -> int | None:
        count = self._idle_workers.value
        return None if count < 0 else count


@dataclass(frozen=True)
class Death:
    role: int
    pid: int
    exitcode: int

    def describe(self) -> str:
        how = f"signal {-self.exitcode}" if self.exitcode < 0 else f"exit code {self.exitcode}"
        return f"the {ROLE_NAMES[self.role]} (pid {self.pid}) died ({how})"


def wedging_role(*, is_monitor: bool, is_pusher: bool, exitcode: int | None, timer: float) -> int:
    """The role to report for a process the sentinel is about to reincarnate, or NOTHING.

    The monitor and the pusher exit 0 only when told to (or, for the pusher, after a broker
    error, having put what it held); anything else may leave a queue lock held. A worker is
    safe to reincarnate when it was inside a task, was recycled or timed out (the sentinel
    terminates it itself); dead while idle, it was blocked in the task queue's get().
    """
    if is_monitor or is_pusher:
        if exitcode == 0:
            return NOTHING
        return MONITOR if is_monitor else PUSHER
    if timer == _IDLE and exitcode is not None:
        return IDLE_WORKER
    return NOTHING


@dataclass(frozen=True)
class Observation:
    """What the command sees of its cluster at one moment (monotonic seconds)."""

    now: float
    started_at: float  # when this cluster was started
    sentinel_exitcode: int | None  # None while the sentinel runs
    sentinel_beat: float  # last guard-loop cycle (0: none yet)
    death: Death | None
    last_task_started: float  # 0: none yet
    idle_workers: int | None  # None: not counted yet
    waiting_since: float | None  # the oldest task waiting in the broker since; None: none


@dataclass(frozen=True)
class Restart:
    reason: str  # stable: sentinel_died, child_died, sentinel_unresponsive, no_progress
    detail: str


def restart_reason(seen: Observation, *, stall_seconds: float) -> Restart | None:
    """Whether the cluster must be restarted, and why; None while it is healthy."""
    if seen.sentinel_exitcode is not None:
        return Restart("sentinel_died", f"the sentinel exited ({seen.sentinel_exitcode})")
    if seen.death is not None:
        return Restart("child_died", seen.death.describe())
    quiet_since = max(seen.sentinel_beat, seen.started_at)
    if seen.now - quiet_since > stall_seconds:
        return Restart(
            "sentinel_unresponsive",
            f"the sentinel's guard loop has not run for {seen.now - quiet_since:.0f}s",
        )
    if seen.waiting_since is None or not seen.idle_workers:
        # Nothing waits, or every worker is inside a task (a slow task is not a stall).
        return None
    waited = seen.now - seen.waiting_since
    idle_for = seen.now - max(seen.last_task_started, seen.started_at)
    if waited > stall_seconds and idle_for > stall_seconds:
        return Restart(
            "no_progress",
            f"no task started for {idle_for:.0f}s with {seen.idle_workers} idle workers while "
            f"the oldest waiting task has waited {waited:.0f}s",
        )
    return None


def restart_delay(quick_restarts: int, *, cap: float) -> float:
    """Seconds to wait before starting a cluster again, after `quick_restarts` restarts in a row
    of clusters that lived only briefly: 0, then 1, 3, 7, 15 s... up to `cap`, so a cluster that
    cannot start (its broker is down) is not restarted in a tight loop."""
    if quick_restarts <= 0:
        return 0.0
    return min(cap, 2.0 ** min(quick_restarts, 16) - 1)


class QueueWatch:
    """Since when tasks have been waiting in the broker, from its queue statistics.

    The MongoDB broker gives the oldest waiting task's age; Redis only the queue's length, so
    waiting counts from the first look that found it non-empty.
    """

    def __init__(self) -> None:
        self.waiting_since: float | None = None

    def update(self, stats: dict | None, now: float) -> float | None:
        # No answer from the broker (no verdict from the queue), or nothing waiting.
        if stats is None or not stats.get("depth"):
            self.waiting_since = None
        elif stats.get("oldest_age_seconds") is not None:
            self.waiting_since = now - stats["oldest_age_seconds"]
        elif self.waiting_since is None:
            self.waiting_since = now
        return self.waiting_since


class _BeatingEvent:
    """The cluster's stop event as the sentinel's guard loop sees it.

    The guard loop waits on it once per cycle (django-q2's `stop_event.wait(cycle)`), so each
    wait is the sentinel's heartbeat, with the count of idle workers.
    """

    def __init__(self, event, on_cycle) -> None:
        self._event = event
        self._on_cycle = on_cycle

    def wait(self, timeout=None):
        self._on_cycle()
        return self._event.wait(timeout)

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()


# The shared memory of the cluster this process belongs to: set in its sentinel, and inherited by
# the workers it forks (None in the command, which runs no task).
_this_cluster: Shared | None = None


def task_started(sender=None, **kwargs) -> None:
    """django-q2's `pre_execute` receiver, in a worker: stamps its own cluster's memory."""
    if _this_cluster is not None:
        _this_cluster.task_started()


class SupervisedSentinel(Sentinel):
    """django-q2's sentinel, reporting deaths that can wedge the cluster and beating, for the
    queue it is given, with `workers` workers, running the schedules or not."""

    def __init__(
        self,
        stop_event,
        start_event,
        cluster_id,
        timeout,
        shared: Shared,
        queue: str,
        workers: int,
        schedules: bool,
    ):
        global _this_cluster
        _this_cluster = shared
        serve_queue(queue)  # its workers acknowledge their tasks on this queue
        self.shared = shared  # before the guard loop starts
        if not schedules:
            # This process's own copy of the settings: the schedules' tasks are the jobs queue's.
            Conf.SCHEDULER = False
        # The broker is made here, in the sentinel's process, as django-q2's sentinel does.
        super().__init__(
            _BeatingEvent(stop_event, self._beat),
            start_event,
            cluster_id,
            get_broker(queue_key(queue)),
            timeout,
            start=False,
        )
        self.pool_size = workers
        self.start()

    def _beat(self) -> None:
        idle = sum(1 for process in self.pool if process.timer.value == _IDLE)
        self.shared.beat(idle)

    def reincarnate(self, process):
        role = wedging_role(
            is_monitor=process == self.monitor,
            is_pusher=process == self.pusher,
            exitcode=process.exitcode,
            timer=process.timer.value if process in self.pool else _TIMED_OUT,
        )
        if role != NOTHING:
            self.shared.report_death(role, process.pid, process.exitcode)
        # Reincarnated anyway: django-q2's bookkeeping stays whole, and the command replaces
        # the whole cluster within a second of the report.
        super().reincarnate(process)
