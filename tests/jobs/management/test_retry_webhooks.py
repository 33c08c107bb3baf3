"""`manage.py retry_webhooks`: operators send failed completion webhooks again; its selection,
its table and its refusals. What one resend does to one job's webhook is in
tests/webhooks/test_resend_operator.py.

Jobs are put in their webhook state with the ORM; a webhook that is really sent goes to a real
receiver on loopback, delivered by its task run in this process (`run_tasks()`). Every run names
its tenant or its job ids: the test database is shared with the rest of the suite.
"""

import getpass
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.utils import timezone

from jobs.models import Job, WebhookStatus
from tests.support.inprocess import run_tasks
from tests.support.operator import rows, run_command
from tests.support.webhooks import Receiver
from webhooks.models import WebhookDelivery

OPERATOR = f"operator:{getpass.getuser()}"


def retry_webhooks(*args) -> str:
    """What the command prints; `rows()` of it are
    (id, tenant, status, webhook, action, new delivery, detail)."""
    return run_command("retry_webhooks", *args)


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def make_job(receiver):
    """A job with a callback to the receiver, put straight into a webhook state."""
    made = []

    def make(owner, webhook_status, *, status="EXECUTION_COMPLETED", age=timedelta(0), **fields):
        job = Job.objects.create(
            tenant_id=owner.tenant_id,
            sub=owner.sub,
            status=status,
            callback_url=fields.pop("callback_url", receiver.url()),
            base_url="http://testserver",
            webhook_status=webhook_status,
            webhook_delivery_id=uuid.uuid4() if webhook_status else None,
            **fields,
        )
        if age:
            # QuerySet.update() leaves auto_now alone, so the job looks untouched for `age`.
            Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - age)
            job.refresh_from_db()
        made.append(job.id)
        return job

    yield make
    # A PENDING webhook would be sent by a later reconciler pass: none is left behind.
    WebhookDelivery.objects.filter(job_id__in=made).delete()
    Job.objects.filter(pk__in=made).delete()


def test_it_sends_the_tenants_failed_webhooks_and_no_others(
    services, alice, bob, make_job, receiver
):
    failed = make_job(alice, WebhookStatus.FAILED)
    delivered = make_job(bob, WebhookStatus.DELIVERED)  # same tenant: not selected

    output = retry_webhooks("--tenant", alice.tenant_id)
    assert run_tasks() == [f"webhook-{failed.id}"]
    job = Job.objects.get(pk=failed.pk)

    [row] = rows(output)
    assert row == (
        str(failed.id),
        alice.tenant_id,
        "EXECUTION_COMPLETED",
        "FAILED",
        "resend",
        str(job.webhook_delivery_id),
        "sent as a new event",
    )
    assert output.splitlines()[-1] == "1 sent again, 0 skipped."
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert job.webhook_delivery_id != failed.webhook_delivery_id
    [received] = receiver.received
    assert received.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)
    entry = job.history[-1]
    assert (entry["by"], entry["reason"]) == (
        OPERATOR,
        "webhook sent again (with manage.py retry_webhooks)",
    )
    delivered.refresh_from_db()
    assert delivered.history == [] and delivered.webhook_status == WebhookStatus.DELIVERED


def test_named_jobs_that_cannot_be_sent_again_are_skipped_with_the_reason(
    services, alice, make_job
):
    delivered = make_job(alice, WebhookStatus.DELIVERED)
    pending = make_job(alice, WebhookStatus.PENDING)
    # Failed, then sent on again by retry_jobs: its next final status sends a new event.
    running = make_job(alice, WebhookStatus.FAILED, status="SUBMITTED")
    no_callback = make_job(alice, "", callback_url="")
    unknown = uuid.uuid4()

    output = retry_webhooks(
        "--job", delivered.id, pending.id, "--job", running.id, no_callback.id, unknown
    )

    assert [(row[0], row[3], row[4], row[5], row[6]) for row in rows(output)] == [
        (
            str(delivered.id),
            "DELIVERED",
            "skip",
            "-",
            "delivered (the receiver answered 2xx); sending it again would be a duplicate "
            "the receiver cannot recognise",
        ),
        (
            str(pending.id),
            "PENDING",
            "skip",
            "-",
            "pending: queued or being sent (the reconciler sends a lost one)",
        ),
        (str(running.id), "FAILED", "skip", "-", "not final yet; the webhook is sent when it is"),
        (str(no_callback.id), "-", "skip", "-", "no callback_url"),
        (str(unknown), "-", "skip", "-", "no such job"),
    ]
    assert output.splitlines()[-1] == "0 sent again, 5 skipped."
    assert run_tasks() == []
    for job in (delivered, pending, running, no_callback):
        stored = Job.objects.get(pk=job.pk)
        assert stored.history == []
        assert stored.webhook_delivery_id == job.webhook_delivery_id


def test_a_dry_run_changes_nothing(services, alice, make_job):
    failed = make_job(alice, WebhookStatus.FAILED)

    output = retry_webhooks("--tenant", alice.tenant_id, "--dry-run")

    assert output.splitlines()[0] == "Dry run: nothing is changed or enqueued."
    [row] = rows(output)
    assert row[3:] == ("FAILED", "resend", "-", "would be sent as a new event")
    assert output.splitlines()[-1] == "Would send 1 again, skip 0."
    job = Job.objects.get(pk=failed.pk)
    assert (job.webhook_status, job.webhook_delivery_id) == (
        WebhookStatus.FAILED,
        failed.webhook_delivery_id,
    )
    assert job.history == []
    assert not WebhookDelivery.objects.filter(job=job).exists()
    assert run_tasks() == []


def test_older_than_and_limit_select_the_longest_failed_first(alice, make_job):
    oldest = make_job(alice, WebhookStatus.FAILED, age=timedelta(hours=3))
    older = make_job(alice, WebhookStatus.FAILED, age=timedelta(hours=2))
    make_job(alice, WebhookStatus.FAILED)  # failed just now

    aged = retry_webhooks("--tenant", alice.tenant_id, "--older-than", "1h", "--dry-run")
    limited = retry_webhooks("--tenant", alice.tenant_id, "--limit", "1", "--dry-run")

    assert [row[0] for row in rows(aged)] == [str(oldest.id), str(older.id)]
    assert [row[0] for row in rows(limited)] == [str(oldest.id)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job", "not-a-uuid"], "'not-a-uuid' is not a job id"),
        (["--older-than", "5x"], "'5x' is not a duration"),
        (["--limit", "0"], "'0' is not a positive whole number"),
    ],
)
def test_it_refuses_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        retry_webhooks(*args)


def test_job_ids_are_arguments_like_retry_jobs_takes_them(services, alice, make_job):
    delivered = make_job(alice, WebhookStatus.DELIVERED)
    failed = make_job(alice, WebhookStatus.FAILED)

    output = retry_webhooks(delivered.id, "--job", failed.id, "--dry-run")

    assert [(row[0], row[4]) for row in rows(output)] == [
        (str(delivered.id), "skip"),
        (str(failed.id), "resend"),
    ]
