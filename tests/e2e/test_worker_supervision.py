"""The worker tier heals itself: a real `manage.py worker` whose cluster processes are SIGKILLed
(what the OOM killer does), found by the PID of the worker the stack started (/proc), never by
name. After each kill, jobs submitted afterwards complete.

An idle worker, the monitor or the pusher killed can leave a queue's lock held for ever, so the
command restarts that whole cluster, alone (it runs one per queue: the jobs' and the webhooks'),
and logs why (one JSON line); a busy worker holds no lock and is reincarnated in place, as
django-q2 does. The decision rules themselves are tested
in-process (tests/orchestration/test_supervisor.py).
"""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings

from orchestration.reconcile import reconcile
from tests.support.api import submit, wait_for_status
from tests.support.cluster import (
    children,
    cluster_processes,
    restarts,
    wait_for_restart,
    worker_pid_running,
)
from tests.support.stack import wait_for_log

ROUNDS = 3  # kills of every child at once, one after another, in one test


def _kill(*pids: int) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _a_job_completes(stack, owner, text: bytes = b"after the kill") -> None:
    job_id = submit(stack, owner, text)["id"]
    wait_for_status(stack, owner, job_id, {"EXECUTION_COMPLETED"}, timeout=60)


def test_an_idle_worker_killed_restarts_its_cluster_alone(quiet_stack, alice):
    worker = quiet_stack.processes["worker"]
    before = len(restarts(worker, "jobs"))
    cluster = cluster_processes(worker)
    webhooks = cluster_processes(worker, "webhooks")

    _kill(cluster["worker"][0])

    restart = wait_for_restart(worker, before)
    assert restart["reason"] == "child_died"
    assert f"idle worker (pid {cluster['worker'][0]}) died (signal 9)" in restart["detail"]
    new = cluster_processes(worker)
    assert new["sentinel"] != cluster["sentinel"]  # a fresh cluster, not a reincarnation
    # The webhooks' cluster has its own queues and locks: it is left running as it was.
    assert cluster_processes(worker, "webhooks") == webhooks
    _a_job_completes(quiet_stack, alice)


def test_the_webhooks_cluster_wedged_is_restarted_and_the_jobs_one_left_alone(quiet_stack, alice):
    worker = quiet_stack.processes["worker"]
    before = len(restarts(worker, "webhooks"))
    jobs_before = len(restarts(worker, "jobs"))
    jobs = cluster_processes(worker)
    webhooks = cluster_processes(worker, "webhooks")

    _kill(webhooks["monitor"][0], webhooks["worker"][0])

    restart = wait_for_restart(worker, before, queue="webhooks")
    assert restart["reason"] == "child_died"
    assert cluster_processes(worker, "webhooks")["sentinel"] != webhooks["sentinel"]
    assert cluster_processes(worker) == jobs
    assert len(restarts(worker, "jobs")) == jobs_before
    _a_job_completes(quiet_stack, alice)


@pytest.mark.parametrize("child", ["monitor", "pusher"])
def test_the_monitor_or_the_pusher_killed_restarts_the_cluster(quiet_stack, alice, child):
    worker = quiet_stack.processes["worker"]
    before = len(restarts(worker, "jobs"))
    cluster = cluster_processes(worker)

    _kill(cluster[child][0])

    restart = wait_for_restart(worker, before)
    assert restart["reason"] == "child_died"
    assert f"the {child}" in restart["detail"]
    _a_job_completes(quiet_stack, alice)


def test_every_child_killed_at_once_again_and_again(quiet_stack, alice):
    worker = quiet_stack.processes["worker"]
    for round_ in range(ROUNDS):
        before = {queue: len(restarts(worker, queue)) for queue in ("jobs", "webhooks")}
        clusters = [cluster_processes(worker, queue) for queue in ("jobs", "webhooks")]

        _kill(*[pid for c in clusters for pid in (*c["worker"], *c["monitor"], *c["pusher"])])

        for queue in ("jobs", "webhooks"):
            assert wait_for_restart(worker, before[queue], queue)["reason"] == "child_died"
        _a_job_completes(quiet_stack, alice, f"round {round_}".encode())
    # Nothing of the killed clusters is left behind: a sentinel per queue and its children.
    assert len(children(worker.pid)) == 2
    for queue in ("jobs", "webhooks"):
        assert len(cluster_processes(worker, queue)["worker"]) == 2


def test_the_sentinel_killed_restarts_the_cluster_and_its_orphans_go(quiet_stack, alice):
    worker = quiet_stack.processes["worker"]
    before = len(restarts(worker, "jobs"))
    cluster = cluster_processes(worker)
    orphans = [*cluster["worker"], *cluster["monitor"], *cluster["pusher"]]

    _kill(cluster["sentinel"])

    restart = wait_for_restart(worker, before)
    assert restart["reason"] == "sentinel_died"
    new = cluster_processes(worker)
    assert not set(orphans) & {new["sentinel"], *new["worker"], *new["monitor"], *new["pusher"]}
    for pid in orphans:  # killed with the rest, and reaped: not even a zombie is left
        assert not os.path.exists(f"/proc/{pid}")
    _a_job_completes(quiet_stack, alice)


def test_a_busy_worker_killed_is_reincarnated_in_place(quiet_stack, alice):
    stack = quiet_stack
    worker = stack.processes["worker"]
    before = len(restarts(worker, "jobs"))
    sentinel = cluster_processes(worker)["sentinel"]
    stack.faults("blob", delay=2.0, methods=["PUT"])
    job_id = submit(stack, alice, b"killed while busy")["id"]
    pid = worker_pid_running(worker.log_path, job_id)
    time.sleep(0.5)  # well inside the slowed upload

    _kill(pid)

    wait_for_log(worker, "reincarnated worker")
    stack.clear_faults()
    if settings.REDIS_URL:  # no delivery receipts: the reconciler brings the task back
        reconcile(stuck_after=timedelta(0))
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=60)
    _a_job_completes(stack, alice)
    assert len(restarts(worker, "jobs")) == before  # the other worker's task was not killed with it
    assert cluster_processes(worker)["sentinel"] == sentinel
