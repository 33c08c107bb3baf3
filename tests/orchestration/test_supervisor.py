"""The supervision's decisions, in-process: which deaths wedge a cluster, when a cluster that
lives on makes no progress, how fast a failing cluster is started again. The processes
themselves are killed for real in tests/e2e/test_worker_supervision.py."""

import pytest

from orchestration.supervisor import (
    IDLE_WORKER,
    MONITOR,
    NOTHING,
    PUSHER,
    Death,
    Observation,
    QueueWatch,
    Shared,
    restart_delay,
    restart_reason,
    wedging_role,
)

STALL = 20.0


def seen(**changes) -> Observation:
    """A healthy cluster started at t=100, seen at t=200, its sentinel beating."""
    fields = {
        "now": 200.0,
        "started_at": 100.0,
        "sentinel_exitcode": None,
        "sentinel_beat": 199.5,
        "death": None,
        "last_task_started": 0.0,
        "idle_workers": 2,
        "waiting_since": None,
    }
    return Observation(**{**fields, **changes})


# --- which deaths wedge the cluster


@pytest.mark.parametrize(
    ("kind", "exitcode", "timer", "role"),
    [
        ("monitor", -9, 0, MONITOR),
        ("monitor", 1, 0, MONITOR),
        ("monitor", 0, 0, NOTHING),  # told to stop
        ("pusher", -9, 0, PUSHER),
        ("pusher", 0, 0, NOTHING),  # left after a broker error, holding nothing
        ("worker", -9, -1, IDLE_WORKER),  # blocked in the task queue's get()
        ("worker", -9, 903.0, NOTHING),  # inside a task: no queue lock held
        ("worker", 0, -2, NOTHING),  # recycled
        ("worker", None, 0, NOTHING),  # timed out: the sentinel terminates it itself
    ],
)
def test_it_reports_the_deaths_that_can_leave_a_queue_lock_held(kind, exitcode, timer, role):
    assert (
        wedging_role(
            is_monitor=kind == "monitor",
            is_pusher=kind == "pusher",
            exitcode=exitcode,
            timer=timer,
        )
        == role
    )


def test_it_keeps_the_first_death_reported():
    shared = Shared()
    shared.report_death(MONITOR, 41, -9)
    shared.report_death(IDLE_WORKER, 42, -9)
    assert shared.death() == Death(role=MONITOR, pid=41, exitcode=-9)
    shared.reset()
    assert shared.death() is None


# --- restart_reason


def test_it_leaves_a_healthy_cluster_alone():
    assert restart_reason(seen(), stall_seconds=STALL) is None


def test_it_restarts_when_the_sentinel_died():
    restart = restart_reason(seen(sentinel_exitcode=-9), stall_seconds=STALL)
    assert restart.reason == "sentinel_died"


def test_it_restarts_when_a_child_died_and_says_which():
    death = Death(role=IDLE_WORKER, pid=4242, exitcode=-9)
    restart = restart_reason(seen(death=death), stall_seconds=STALL)
    assert restart.reason == "child_died"
    assert restart.detail == "the idle worker (pid 4242) died (signal 9)"


def test_it_restarts_when_the_sentinel_stopped_beating():
    restart = restart_reason(seen(sentinel_beat=170.0), stall_seconds=STALL)
    assert restart.reason == "sentinel_unresponsive"
    assert restart.detail == "the sentinel's guard loop has not run for 30s"


def test_it_gives_a_starting_sentinel_the_stall_time_to_beat():
    starting = seen(started_at=190.0, sentinel_beat=0.0)
    assert restart_reason(starting, stall_seconds=STALL) is None
    assert restart_reason(seen(started_at=170.0, sentinel_beat=0.0), stall_seconds=STALL)


def test_it_restarts_when_tasks_wait_and_idle_workers_start_none():
    stalled = seen(waiting_since=170.0, last_task_started=150.0, idle_workers=2)
    restart = restart_reason(stalled, stall_seconds=STALL)
    assert restart.reason == "no_progress"
    assert "no task started for 50s with 2 idle workers" in restart.detail


def test_it_waits_the_stall_time_before_calling_it_no_progress():
    assert restart_reason(seen(waiting_since=185.0), stall_seconds=STALL) is None
    recently = seen(waiting_since=150.0, last_task_started=190.0)
    assert restart_reason(recently, stall_seconds=STALL) is None


def test_a_cluster_whose_workers_are_all_busy_is_not_stalled():
    # Long tasks (a slow downstream) hold every worker: waiting tasks are not a wedge.
    busy = seen(waiting_since=100.0, last_task_started=110.0, idle_workers=0)
    assert restart_reason(busy, stall_seconds=STALL) is None


def test_a_fresh_cluster_gets_the_stall_time_to_start_a_task():
    fresh = seen(started_at=195.0, waiting_since=100.0, last_task_started=0.0)
    assert restart_reason(fresh, stall_seconds=STALL) is None


# --- the queue and the restart pace


def test_the_queue_watch_uses_the_oldest_tasks_age_when_the_broker_gives_it():
    watch = QueueWatch()
    assert watch.update({"depth": 3, "oldest_age_seconds": 12.0}, now=100.0) == 88.0
    assert watch.update({"depth": 0, "oldest_age_seconds": 0.0}, now=105.0) is None


def test_the_queue_watch_counts_from_the_first_look_without_an_age():
    # Redis gives only the queue's length.
    watch = QueueWatch()
    assert watch.update({"depth": 2}, now=100.0) == 100.0
    assert watch.update({"depth": 5}, now=105.0) == 100.0
    assert watch.update({"depth": 0}, now=110.0) is None
    assert watch.update({"depth": 1}, now=115.0) == 115.0


def test_the_queue_watch_gives_no_verdict_when_the_broker_does_not_answer():
    watch = QueueWatch()
    watch.update({"depth": 2}, now=100.0)
    assert watch.update(None, now=105.0) is None


def test_a_cluster_failing_again_and_again_is_started_ever_more_slowly_up_to_a_cap():
    delays = [restart_delay(n, cap=STALL) for n in range(7)]
    assert delays == [0.0, 1.0, 3.0, 7.0, 15.0, 20.0, 20.0]
