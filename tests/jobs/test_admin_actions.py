"""The job admin's actions: "Retry selected jobs", "Refresh status from JobService" and "Send
webhook again", for staff with the change permission only.

Pages are rendered in-process with Django's test Client. A retried job or a webhook sent again
is really enqueued on the broker; `run_tasks()` runs it in this process against the reference
services (and a webhook receiver on loopback), as the cluster's worker would.
"""

import re
import time
import uuid

import pytest
import requests
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from jobs.models import Job, WebhookStatus
from jobs.states import Status
from tests.support.admin import logged_in, staff_user
from tests.support.inprocess import run_tasks, submit, wait_for_status
from tests.support.webhooks import Receiver

CHANGELIST = "/admin/jobs/job/"
RETRY = "retry_selected_jobs"
REFRESH = "refresh_selected_jobs"
RESEND = "resend_selected_webhooks"


@pytest.fixture
def operator(granted_permissions_work) -> Client:
    """Staff who may view jobs and run the actions (the change permission), nothing more."""
    return logged_in(staff_user(perms=("view_job", "change_job")))


@pytest.fixture
def failed_job(alice) -> Job:
    """A SUBMITTED_ERROR job put there with the ORM, for tests in which nothing is retried."""
    return Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="SUBMITTED_ERROR")


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def _action(client: Client, action: str, *jobs, follow: bool = True):
    selected = [str(getattr(job, "pk", job)) for job in jobs]
    return client.post(CHANGELIST, {"action": action, "_selected_action": selected}, follow=follow)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _offered_actions(client: Client) -> list[str]:
    return re.findall(r'<option value="(\w+)"', client.get(CHANGELIST).content.decode())


def _webhook_job(owner, webhook_status, *, callback_url="https://hooks.example.com/x") -> Job:
    return Job.objects.create(
        tenant_id=owner.tenant_id,
        sub=owner.sub,
        status="EXECUTION_ERROR",
        callback_url=callback_url,
        base_url="http://testserver",
        webhook_status=webhook_status,
        webhook_delivery_id=uuid.uuid4() if webhook_status else None,
    )


def _wait_for_remote(services, job_id: str, status: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remote = requests.get(f"{services.urls['job']}/jobs/{job_id}", timeout=5).json()
        if remote["status"] == status:
            return
        assert time.monotonic() < deadline, f"JobService: {job_id} is {remote['status']}"
        time.sleep(0.05)


# --- Retry ------------------------------------------------------------------------------------


def test_an_operator_retries_a_failed_job_and_it_completes(api, services, operator, alice):
    services.faults("blob", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(api, alice, b"retry me")["id"]
    run_tasks()
    job = Job.objects.get(pk=job_id)
    assert job.status == Status.STORED_ERROR

    response = _action(operator, RETRY, job)

    assert _messages(response) == ["1 retried, 0 requeued, 0 skipped."]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    retry = Job.objects.get(pk=job_id).history[1]
    assert (retry["from"], retry["to"], retry["reason"]) == (
        "STORED_ERROR",
        "CREATED",
        "retried from admin",
    )
    assert retry["by"].startswith("admin:staff-")
    assert services.stats("job")["executions"][job_id] == 1


def test_a_superuser_retries_a_submitted_error_job_and_it_completes(api, services, alice):
    services.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(api, alice, b"from the admin")["id"]
    run_tasks()
    assert Job.objects.get(pk=job_id).status == Status.SUBMITTED_ERROR
    done = Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="EXECUTION_ERROR")
    admin = staff_user(superuser=True)

    response = _action(logged_in(admin), RETRY, job_id, done.id)

    assert response.status_code == 200
    assert _messages(response) == [
        "1 retried, 0 requeued, 1 skipped.",
        "Skipped 1: final; nothing to retry.",
    ]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    retry = Job.objects.get(pk=job_id).history[2]
    assert (retry["from"], retry["to"]) == ("SUBMITTED_ERROR", "STORED")
    assert (retry["by"], retry["reason"]) == (f"admin:{admin.username}", "retried from admin")
    assert services.stats("job")["executions"][job_id] == 1
    done.refresh_from_db()
    assert done.status == "EXECUTION_ERROR" and done.history == []


# --- Refresh ----------------------------------------------------------------------------------


def test_an_operator_refreshes_a_submitted_job_that_jobservice_finished(
    api, services, operator, alice, make_job
):
    job_id = submit(api, alice, b"refresh me")["id"]
    run_tasks()
    job = Job.objects.get(pk=job_id)
    assert job.status == Status.SUBMITTED
    _wait_for_remote(services, job_id, "SUCCEEDED")
    final = make_job(status=Status.EXECUTION_ERROR)

    response = _action(operator, REFRESH, job, final)

    assert _messages(response) == [
        "1 refreshed: 1 changed (1 EXECUTION_COMPLETED), 0 still SUBMITTED; "
        "1 skipped (not SUBMITTED)."
    ]
    job.refresh_from_db()
    assert job.status == Status.EXECUTION_COMPLETED
    assert job.history[-1]["reason"] == "JobService reported SUCCEEDED"
    final.refresh_from_db()
    assert final.status == Status.EXECUTION_ERROR and final.history == []


def test_a_job_still_running_stays_submitted_when_refreshed(services, operator, make_job):
    # JobService has no such job: the refresh fails, and the last known status is kept.
    job = make_job(status=Status.SUBMITTED, remote_job_id=str(uuid.uuid4()))

    response = _action(operator, REFRESH, job)

    assert _messages(response)[0] == (
        "1 refreshed: 0 changed, 1 still SUBMITTED; 0 skipped (not SUBMITTED)."
    )
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED


# --- Send webhook again -----------------------------------------------------------------------


def test_a_superuser_sends_a_failed_webhook_again(services, alice, receiver):
    failed = _webhook_job(alice, WebhookStatus.FAILED, callback_url=receiver.url())
    delivered = _webhook_job(alice, WebhookStatus.DELIVERED)
    no_callback = _webhook_job(alice, "", callback_url="")
    admin = staff_user(superuser=True)

    response = _action(logged_in(admin), RESEND, failed.id, delivered.id, no_callback.id)
    # The new event's delivery task, the one enqueued; the worker would run it next.
    assert run_tasks() == [f"webhook-{failed.id}"]
    job = Job.objects.get(pk=failed.pk)

    assert response.status_code == 200
    assert _messages(response) == [
        "1 sent again, 2 skipped.",
        "Skipped 1: delivered (the receiver answered 2xx); sending it again would be a "
        "duplicate the receiver cannot recognise.",
        "Skipped 1: no callback_url.",
    ]
    assert job.webhook_status == WebhookStatus.DELIVERED
    assert job.webhook_delivery_id != failed.webhook_delivery_id
    [received] = receiver.received
    assert received.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)
    [entry] = job.history
    assert (entry["from"], entry["to"]) == ("EXECUTION_ERROR", "EXECUTION_ERROR")
    assert (entry["by"], entry["reason"]) == (
        f"admin:{admin.username}",
        "webhook sent again (from admin)",
    )
    for untouched in (delivered, no_callback):
        stored = Job.objects.get(pk=untouched.pk)
        assert stored.history == [] and stored.webhook_status == untouched.webhook_status


def test_a_user_with_the_change_permission_is_offered_the_webhook_resend(services, operator, alice):
    pending = _webhook_job(alice, WebhookStatus.PENDING)
    try:
        actions = _offered_actions(operator)
        response = _action(operator, RESEND, pending.id)
    finally:
        pending.delete()  # or the reconciler would try to send it

    assert RESEND in actions
    assert _messages(response) == [
        "0 sent again, 1 skipped.",
        "Skipped 1: pending: queued or being sent (the reconciler sends a lost one).",
    ]
    assert run_tasks() == []


# --- Who may run them -------------------------------------------------------------------------


def test_the_actions_are_offered_to_operators_only(operator, granted_permissions_work):
    viewer = logged_in(staff_user(perms=("view_job",)))

    assert set(_offered_actions(operator)) == {RETRY, REFRESH, RESEND}
    assert _offered_actions(viewer) == []


def test_a_user_with_the_change_permission_is_offered_the_retry_but_no_delete(operator, alice):
    final = Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="EXECUTION_ERROR")

    actions = _offered_actions(operator)
    assert RETRY in actions
    assert "delete_selected" not in actions
    # The action runs for them (a final job, so nothing is enqueued).
    response = _action(operator, RETRY, final)
    assert _messages(response) == [
        "0 retried, 0 requeued, 1 skipped.",
        "Skipped 1: final; nothing to retry.",
    ]


def test_a_user_who_may_only_view_jobs_is_not_offered_the_retry(
    granted_permissions_work, failed_job
):
    client = logged_in(staff_user(perms=("view_job",)))

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert str(failed_job.id) in page.content.decode()
    assert RETRY not in page.content.decode()
    # With no action it may run, the changelist ignores an action POST.
    response = _action(client, RETRY, failed_job)
    assert response.status_code == 200
    assert _messages(response) == []
    failed_job.refresh_from_db()
    assert failed_job.status == "SUBMITTED_ERROR" and failed_job.history == []


@pytest.mark.parametrize("action", [RETRY, REFRESH, RESEND])
def test_staff_who_may_only_view_cannot_run_an_action(granted_permissions_work, make_job, action):
    viewer = logged_in(staff_user(perms=("view_job",)))
    job = make_job(status=Status.SUBMITTED_ERROR)

    response = _action(viewer, action, job)

    # Django ignores an action that is not offered: the list again, no message.
    assert response.status_code == 200 and _messages(response) == []
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED_ERROR and job.history == []


def test_a_staff_user_without_permissions_gets_403(failed_job):
    client = logged_in(staff_user())

    assert client.get(CHANGELIST).status_code == 403
    assert _action(client, RETRY, failed_job, follow=False).status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.status == "SUBMITTED_ERROR" and failed_job.history == []


@pytest.mark.parametrize("action", [RETRY, REFRESH, RESEND])
def test_staff_without_permissions_get_403(make_job, action):
    job = make_job(status=Status.SUBMITTED_ERROR)

    response = _action(logged_in(staff_user()), action, job, follow=False)

    assert response.status_code == 403
    job.refresh_from_db()
    assert job.history == []


@pytest.mark.parametrize("user", ["anonymous", "not staff"])
@pytest.mark.parametrize("action", [RETRY, REFRESH, RESEND])
def test_anyone_else_is_sent_to_the_login_page(make_job, user, action):
    client = Client() if user == "anonymous" else logged_in(staff_user(staff=False))
    job = make_job(status=Status.SUBMITTED_ERROR)

    for response in (client.get(CHANGELIST), _action(client, action, job, follow=False)):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=/admin/jobs/job/")
    job.refresh_from_db()
    assert job.history == []


# --- History: Django's admin log ----------------------------------------------------------------


def test_a_retry_from_the_admin_shows_in_the_jobs_history_page(api, services, operator, alice):
    services.faults("blob", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(api, alice, b"history")["id"]
    run_tasks()

    _action(operator, RETRY, Job.objects.get(pk=job_id))

    history = operator.get(reverse("admin:jobs_job_history", args=[job_id]))
    assert history.status_code == 200
    text = history.content.decode()
    assert "retry from admin: STORED_ERROR -&gt; CREATED" in text
    assert "have a change history" not in text
    entry = LogEntry.objects.get(object_id=job_id)
    assert entry.user.get_username().startswith("staff-")
    run_tasks()
