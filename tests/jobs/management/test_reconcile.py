"""`manage.py reconcile`: one pass now, the worker tier's (requeue stuck jobs, refresh SUBMITTED
ones, send CANCELLING ones' cancel again, remove staged files nobody needs) and then the
webhooks' (enqueue webhooks nobody is sending), with both reported.

What each pass decides is tested with the passes themselves (orchestration.reconcile,
webhooks.reconcile); here, that the command runs both, honours its thresholds and reports what
they did. In-process: the command through call_command, what it enqueued run by `run_tasks()`
against the reference services and a webhook receiver on loopback.

The test database is shared, and a pass looks at every job: the jobs here look untouched for
30 days and the thresholds are 23 days, so that no other test's job is old enough to be acted
on, and the assertions name this test's jobs.
"""

import os
import re
import time
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from jobs import staging
from jobs.models import Job, WebhookStatus
from jobs.states import Status
from tests.support.inprocess import run_tasks, submit
from tests.support.operator import run_command
from tests.support.operator_jobs import JobMaker
from tests.support.webhooks import Receiver
from webhooks.models import WebhookDelivery

LONG_AGO = timedelta(days=30)
THRESHOLD = str(int(timedelta(days=23).total_seconds()))
SUMMARY = re.compile(
    r"(\d+) requeued, (\d+) refreshed, (\d+) cancels retried, (\d+) staged files removed, "
    r"(\d+) webhooks enqueued"
)


@pytest.fixture
def make_job():
    maker = JobMaker()
    yield maker
    maker.clean_up()
    WebhookDelivery.objects.filter(job_id__in=maker.made).delete()
    Job.objects.filter(pk__in=maker.made).delete()


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def _untouched_for(job_id, age: timedelta) -> None:
    # QuerySet.update() leaves auto_now alone, so the job looks untouched (and unchecked by the
    # worker or a reconciler) for `age`.
    then = timezone.now() - age
    Job.objects.filter(pk=job_id).update(updated_at=then, checked_at=then)


def _remote_status(services, job_id: str) -> str:
    return requests.get(f"{services.urls['job']}/jobs/{job_id}", timeout=5).json()["status"]


def _wait_for_remote(services, job_id: str, status: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _remote_status(services, job_id) != status:
        assert time.monotonic() < deadline, f"JobService: {job_id} is not {status}"
        time.sleep(0.05)


def _listed(output: str, label: str) -> set[str]:
    """The job ids the command listed under `label` (requeued, refreshed, ...)."""
    return set(re.findall(rf"^{label}\s+([0-9a-f-]{{36}})$", output, re.M))


def test_it_runs_both_passes_and_reports_each(
    api, services, alice, make_job, receiver, settings, tmp_path
):
    # SUBMITTED, and finished in JobService since: the pass refreshes it.
    finished = submit(api, alice, b"finished meanwhile")["id"]
    run_tasks()
    _wait_for_remote(services, finished, "SUCCEEDED")
    _untouched_for(finished, LONG_AGO)
    # CANCELLING, because JobService could not be reached when its owner cancelled.
    services.faults("job", execution_delay=30)
    cancelling = submit(api, alice, b"cancel me")["id"]
    run_tasks()
    Job.objects.filter(pk=cancelling, status=Status.SUBMITTED).update(status=Status.CANCELLING)
    _untouched_for(cancelling, LONG_AGO)
    make_job.made += [finished, cancelling]
    # A staging area of this test's own, so that what the pass removes is counted exactly.
    settings.STAGING_DIR = str(tmp_path)
    staging.ensure_dirs()
    # CREATED, its task lost: the pass enqueues it again. A younger one is left alone.
    stuck = make_job(alice, Status.CREATED, data=b"lost task", age=LONG_AGO)
    younger = make_job(alice, Status.CREATED, data=b"not stuck yet", age=timedelta(days=20))
    # Final, its webhook PENDING and nobody sending it: the webhooks' pass enqueues it.
    unsent = make_job(
        alice,
        Status.EXECUTION_COMPLETED,
        age=LONG_AGO,
        callback_url=receiver.url(),
        base_url="http://testserver",
        webhook_status=WebhookStatus.PENDING,
        webhook_delivery_id=uuid.uuid4(),
    )
    # Staged files nobody needs: the input of a final job, and one whose job never existed.
    done = make_job(alice, Status.EXECUTION_COMPLETED, data=b"stored long ago")
    orphan = tmp_path / str(uuid.uuid4())
    orphan.write_bytes(b"no job")
    two_hours_ago = time.time() - 7200
    os.utime(orphan, (two_hours_ago, two_hours_ago))

    output = run_command(
        "reconcile",
        "--stuck-after", THRESHOLD,
        "--refresh-after", THRESHOLD,
        "--webhook-after", THRESHOLD,
    )  # fmt: skip
    services.faults("job", execution_delay=0.05)

    summary = SUMMARY.fullmatch(output.splitlines()[0])
    assert summary, output
    requeued, refreshed, cancels, removed, webhooks = map(int, summary.groups())
    assert _listed(output, "requeued") >= {str(stuck.id)}
    assert str(younger.id) not in output
    assert _listed(output, "refreshed") >= {finished}
    assert _listed(output, "cancel retried") >= {cancelling}
    assert _listed(output, "webhook") >= {str(unsent.id)}
    # The counts are those of the listed ids; the staged files are this test's two.
    assert (requeued, refreshed, cancels, webhooks) == (
        len(_listed(output, "requeued")),
        len(_listed(output, "refreshed")),
        len(_listed(output, "cancel retried")),
        len(_listed(output, "webhook")),
    )
    assert removed == 2
    assert not staging.staged_path(done.id).exists() and not orphan.exists()
    assert staging.staged_path(stuck.id).exists() and staging.staged_path(younger.id).exists()
    # The refresh and the cancel were acted on in the pass itself.
    assert Job.objects.get(pk=finished).status == Status.EXECUTION_COMPLETED
    assert Job.objects.get(pk=cancelling).status == Status.CANCELLED
    assert services.stats("job")["by_id"][cancelling]["DELETE"] == 1

    # What was enqueued runs: the stuck job goes on its way, the webhook is delivered.
    ran = run_tasks()

    assert f"orchestrate-{stuck.id}" in ran and f"webhook-{unsent.id}" in ran
    stuck.refresh_from_db()
    assert stuck.status in (Status.SUBMITTED, Status.EXECUTION_COMPLETED)
    assert services.stats("job")["by_id"][str(stuck.id)]["PUT"] == 1
    younger.refresh_from_db()
    assert younger.status == Status.CREATED and younger.history == []
    unsent.refresh_from_db()
    assert unsent.webhook_status == WebhookStatus.DELIVERED
    [received] = receiver.received
    assert received.headers["X-FrontService-Delivery"] == str(unsent.webhook_delivery_id)


def test_without_options_the_settings_thresholds_apply(services, alice, make_job, settings):
    settings.RECONCILE_STUCK_AFTER = int(timedelta(days=23).total_seconds())
    stuck = make_job(alice, Status.CREATED, data=b"lost task", age=LONG_AGO)
    younger = make_job(alice, Status.CREATED, data=b"not stuck yet", age=timedelta(days=20))

    output = run_command("reconcile")

    assert SUMMARY.fullmatch(output.splitlines()[0]), output
    assert str(stuck.id) in _listed(output, "requeued")
    assert str(younger.id) not in output
    assert f"orchestrate-{stuck.id}" in run_tasks()
