"""The job admin: a "Retry selected jobs" action for those allowed, and nothing to edit.

Pages are rendered in-process with Django's test Client; a retried job is really enqueued, so
those tests use the stack, whose worker runs it to the end.
"""

import re

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import Job
from tests.support.admin import JOIN_FREE_BACKEND, logged_in, staff_user
from tests.support.api import submit, wait_for_status, wait_for_stored_status

CHANGELIST = "/admin/jobs/job/"
RETRY = "retry_selected_jobs"


def _retry(client: Client, *job_ids):
    return client.post(
        CHANGELIST, {"action": RETRY, "_selected_action": [str(i) for i in job_ids]}, follow=True
    )


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def granted_permissions_work(settings):
    settings.AUTHENTICATION_BACKENDS = [JOIN_FREE_BACKEND]


@pytest.fixture
def failed_job(alice) -> Job:
    """A SUBMITTED_ERROR job put there with the ORM, for tests in which nothing is retried."""
    return Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="SUBMITTED_ERROR")


def test_a_superuser_retries_a_submitted_error_job_and_it_completes(quiet_stack, alice):
    stack = quiet_stack
    stack.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(stack, alice, b"from the admin")["id"]
    wait_for_stored_status(job_id, {"SUBMITTED_ERROR"})
    done = Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="EXECUTION_ERROR")
    admin = staff_user(superuser=True)

    response = _retry(logged_in(admin), job_id, done.id)

    assert response.status_code == 200
    assert _messages(response) == [
        "1 retried, 0 requeued, 1 skipped.",
        "Skipped 1: final; nothing to retry.",
    ]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    retry = Job.objects.get(pk=job_id).history[2]
    assert (retry["from"], retry["to"]) == ("SUBMITTED_ERROR", "STORED")
    assert (retry["by"], retry["reason"]) == (f"admin:{admin.username}", "retried from admin")
    assert stack.stats("job")["executions"][job_id] == 1
    done.refresh_from_db()
    assert done.status == "EXECUTION_ERROR" and done.history == []


def test_a_staff_user_without_permissions_gets_403(failed_job):
    client = logged_in(staff_user())

    assert client.get(CHANGELIST).status_code == 403
    retry = client.post(CHANGELIST, {"action": RETRY, "_selected_action": [str(failed_job.id)]})
    assert retry.status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.status == "SUBMITTED_ERROR" and failed_job.history == []


def test_a_user_who_may_only_view_jobs_is_not_offered_the_retry(
    granted_permissions_work, failed_job
):
    client = logged_in(staff_user(perms=("view_job",)))

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert str(failed_job.id) in page.content.decode()
    assert RETRY not in page.content.decode()
    # With no action it may run, the changelist ignores an action POST.
    response = _retry(client, failed_job.id)
    assert response.status_code == 200
    assert _messages(response) == []
    failed_job.refresh_from_db()
    assert failed_job.status == "SUBMITTED_ERROR" and failed_job.history == []


def test_a_user_with_the_change_permission_is_offered_the_retry_but_no_delete(
    granted_permissions_work, alice
):
    client = logged_in(staff_user(perms=("view_job", "change_job")))
    final = Job.objects.create(tenant_id=alice.tenant_id, sub=alice.sub, status="EXECUTION_ERROR")

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    actions = re.findall(r'<option value="(\w+)"', page.content.decode())
    assert RETRY in actions
    assert "delete_selected" not in actions
    # The action runs for them (a final job, so nothing is enqueued).
    response = _retry(client, final.id)
    assert _messages(response) == [
        "0 retried, 0 requeued, 1 skipped.",
        "Skipped 1: final; nothing to retry.",
    ]


def test_the_change_page_shows_a_job_and_edits_nothing(failed_job):
    client = logged_in(staff_user(superuser=True))
    url = reverse("admin:jobs_job_change", args=[failed_job.pk])

    page = client.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert failed_job.tenant_id in html and "SUBMITTED_ERROR" in html
    fields = {field.name for field in Job._meta.fields}
    inputs = set(re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', html))
    assert inputs.isdisjoint(fields), inputs & fields
    assert 'name="_save"' not in html
    # Even a hand-made POST cannot write the job (it would overwrite concurrent changes).
    response = client.post(url, {"status": "EXECUTION_COMPLETED", "_save": "Save"})
    assert response.status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.status == "SUBMITTED_ERROR"
