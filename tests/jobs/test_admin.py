"""The job admin's pages (the changelist's columns, filters and search; a job's page, which
edits nothing), django-q2's admin pages, the first admin user, and the task-result housekeeping.
The actions (retry, refresh, send a webhook again) are in test_admin_actions.py.

Pages are rendered in-process with Django's test Client on the shared test database. Jobs made
with the ORM belong to owners of their own and are deleted afterwards.
"""

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule, Success, Task
from django_q.monitor import save_task

from jobs.admin import TenantFilter
from jobs.models import IdempotencyKey, Job
from jobs.states import Status
from orchestration.schedules import RECONCILE, ensure_schedules
from tests.support.admin import logged_in, staff_user
from tests.support.inprocess import run_tasks, submit

CHANGELIST = "/admin/jobs/job/"


@pytest.fixture
def superuser() -> Client:
    return logged_in(staff_user(superuser=True))


@pytest.fixture
def operator(granted_permissions_work) -> Client:
    """Staff who may view jobs and run the actions (the change permission), nothing more."""
    return logged_in(staff_user(perms=("view_job", "change_job")))


def _listed(response) -> set[uuid.UUID]:
    assert response.status_code == 200, response.content[:500]
    return {job.pk for job in response.context["cl"].result_list}


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- The changelist: columns, filters, search -------------------------------------------------


def test_the_changelist_shows_the_columns_operators_need(superuser, make_job):
    job = make_job(attempts=2)

    page = superuser.get(CHANGELIST, {"tenant": job.tenant_id})

    assert _listed(page) == {job.pk}
    headers = re.findall(r'<th scope="col"[^>]*class="[^"]*column-(\w+)', page.content.decode())
    assert headers == [
        "short_id",
        "tenant_id",
        "sub",
        "status",
        "created",
        "updated",
        "attempts",
    ]
    # Short enough for a laptop screen: the id's first 8 characters (all of it on hover), times
    # to the second.
    text = page.content.decode()
    assert f'<span title="{job.id}">{str(job.id)[:8]}</span>' in text
    assert job.created_at.strftime("%Y-%m-%d %H:%M:%S") in text


def test_view_site_leads_to_the_api_docs_and_a_job_has_no_view_on_site(superuser, make_job):
    job = make_job()

    page = superuser.get(reverse("admin:jobs_job_change", args=[job.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert '<a href="/api/docs/">View site</a>' in text
    assert "View on site" not in text
    assert superuser.get("/api/docs/").status_code == 200


def test_it_filters_by_status(superuser, make_job):
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    failed = make_job(tenant_id=tenant, status=Status.SUBMITTED_ERROR)
    make_job(tenant_id=tenant, status=Status.EXECUTION_COMPLETED)
    make_job(tenant_id=tenant, status=Status.EXECUTION_ERROR)

    page = superuser.get(CHANGELIST, {"tenant": tenant, "status__exact": "SUBMITTED_ERROR"})

    assert _listed(page) == {failed.pk}


def test_it_filters_by_tenant_and_lists_the_tenant(superuser, make_job):
    job = make_job()
    make_job(sub=job.sub)  # same sub, another tenant

    page = superuser.get(CHANGELIST, {"tenant": job.tenant_id})

    assert _listed(page) == {job.pk}
    tenant_filter = next(
        spec for spec in page.context["cl"].filter_specs if isinstance(spec, TenantFilter)
    )
    assert (job.tenant_id, job.tenant_id) in tenant_filter.lookup_choices
    assert f'<a href="?tenant={job.tenant_id}">{job.tenant_id}</a>' in page.content.decode()


def test_it_filters_by_creation_date(superuser, make_job):
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    today = make_job(tenant_id=tenant)
    old = make_job(tenant_id=tenant)
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    page = superuser.get(CHANGELIST, {"tenant": tenant})
    assert _listed(page) == {today.pk, old.pk}
    changelist = page.context["cl"]
    date_filter = next(
        spec for spec in changelist.filter_specs if getattr(spec, "field_path", "") == "created_at"
    )
    links = {
        choice["display"]: choice["query_string"] for choice in date_filter.choices(changelist)
    }

    for label in ("Today", "Past 7 days", "This month"):
        assert _listed(superuser.get(CHANGELIST + links[label])) == {today.pk}, label
    # Any range, from the URL: the filter's own parameters.
    long_ago = {
        "created_at__gte": "2000-01-01T00:00Z",
        "created_at__lt": f"{timezone.now() - timedelta(days=1):%Y-%m-%dT%H:%MZ}",
    }
    assert _listed(superuser.get(CHANGELIST, {"tenant": tenant, **long_ago})) == {old.pk}


@pytest.mark.parametrize(
    "term",
    [
        lambda job: str(job.pk),
        lambda job: str(job.pk).upper().replace("-", ""),  # any spelling of a UUID
        lambda job: job.tenant_id,
        lambda job: job.sub,
        lambda job: job.blob_id,
        lambda job: job.remote_job_id,
    ],
    ids=["job id", "job id as hex", "tenant", "sub", "blob id", "remote job id"],
)
def test_search_finds_exactly_the_job(superuser, make_job, term):
    jobs = [
        make_job(blob_id=f"blob-{uuid.uuid4()}", remote_job_id=f"remote-{uuid.uuid4()}")
        for _ in range(3)
    ]
    wanted = jobs[1]

    page = superuser.get(CHANGELIST, {"q": term(wanted)})

    assert _listed(page) == {wanted.pk}


def test_a_part_of_an_id_finds_a_stored_job_by_its_blob_id(superuser, make_job):
    job = make_job(status=Status.SUBMITTED)
    # As the worker does: the blob and remote job ids are the job id.
    Job.objects.filter(pk=job.pk).update(blob_id=str(job.pk), remote_job_id=str(job.pk))

    page = superuser.get(CHANGELIST, {"q": str(job.pk)[:13]})

    assert _listed(page) == {job.pk}


def test_a_job_id_search_keeps_the_filters(superuser, make_job):
    job = make_job(status=Status.EXECUTION_ERROR)

    page = superuser.get(CHANGELIST, {"q": str(job.pk), "status__exact": "SUBMITTED_ERROR"})

    assert _listed(page) == set()


@pytest.mark.parametrize("term", ["no-such-job-anywhere", "a(b[c*", "5fae24ed-11a1-4c0d"])
def test_a_search_that_matches_nothing_lists_nothing(superuser, make_job, term):
    make_job()

    assert _listed(superuser.get(CHANGELIST, {"q": term})) == set()


# --- The job page -----------------------------------------------------------------------------


def test_the_job_page_shows_history_error_and_task_links(api, services, superuser, alice):
    services.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(api, alice, b"see me in the admin")["id"]
    name = f"orchestrate-{job_id}"
    assert run_tasks() == [name]
    assert Job.objects.get(pk=job_id).status == Status.SUBMITTED_ERROR
    # What the cluster's monitor saves once the task has returned, under the task's name.
    save_task({**_task_package(name, success=True), "sync": True}, broker=None)

    page = superuser.get(reverse("admin:jobs_job_change", args=[job_id]))

    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(\w+)</td><td>(\w+)</td>", html)
    assert [(old, new) for _, old, new in rows] == [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED_ERROR"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", at) for at, _, _ in rows)
    assert "input stored in BlobService (1 attempt)</td><td>frontservice</td>" in html
    error = json.loads(unescape(re.search(r"<pre>(.*?)</pre>", html, re.S)[1]))
    assert (error["service"], error["status_code"], error["attempts"]) == ("jobservice", 400, 1)
    assert f'<a href="/admin/django_q/success/?name={name}">1 successful</a>' in html
    assert f'<a href="/admin/django_q/failure/?name={name}">0 failed</a>' in html
    assert re.search(r"\d+ waiting, \d+ in flight", html)
    # The link lists that job's task.
    tasks = superuser.get("/admin/django_q/success/", {"name": name})
    assert [task.name for task in tasks.context["cl"].result_list] == [name]


def test_the_job_page_and_its_history_show_times_to_the_second(make_job):
    user = staff_user(superuser=True)
    # Seconds that Django's English format ("Jan. 5, 2026, 10 a.m.") would drop.
    at = datetime(2026, 1, 5, 10, 0, 42, tzinfo=UTC)
    job = make_job(checked_at=at)
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(Job),
        object_id=str(job.pk),
        object_repr=str(job),
        action_flag=CHANGE,
        change_message="retry from admin: STORED_ERROR -> CREATED",
        action_time=at,
    )
    client = logged_in(user)

    page = client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    history = client.get(reverse("admin:jobs_job_history", args=[job.pk]))

    assert page.status_code == history.status_code == 200
    html = page.content.decode()
    assert "2026-01-05 10:00:42 UTC" in html  # checked_at
    assert job.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in html
    assert re.search(r"<th[^>]*>\s*2026-01-05 10:00:42 UTC\s*</th>", history.content.decode())
    LogEntry.objects.filter(object_id=str(job.pk)).delete()


def test_the_task_links_count_each_kind(superuser, make_job):
    job = make_job()
    name = f"orchestrate-{job.pk}"
    _task(name, success=True)
    _task(name, success=False)
    _task(name, success=False)
    _task(f"orchestrate-{uuid.uuid4()}", success=False)  # another job's

    html = superuser.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    assert f'<a href="/admin/django_q/success/?name={name}">1 successful</a>' in html
    assert f'<a href="/admin/django_q/failure/?name={name}">2 failed</a>' in html


def test_a_job_without_history_or_error_says_so(superuser, make_job):
    job = make_job(status=Status.CREATED)

    html = superuser.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    assert "No status change yet." in html
    assert "<pre>" not in html


def test_no_field_of_a_job_can_be_edited(operator, make_job):
    job = make_job(status=Status.SUBMITTED_ERROR)
    url = reverse("admin:jobs_job_change", args=[job.pk])

    page = operator.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    fields = {field.name for field in Job._meta.fields}
    inputs = set(re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', html))
    assert inputs.isdisjoint(fields), inputs & fields
    assert 'name="_save"' not in html
    assert operator.post(url, {"status": "EXECUTION_COMPLETED", "_save": "Save"}).status_code == 403
    assert operator.get(f"{CHANGELIST}add/").status_code == 403
    assert operator.post(reverse("admin:jobs_job_delete", args=[job.pk])).status_code == 403
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED_ERROR and job.history == []


def test_the_change_page_shows_a_job_and_edits_nothing(superuser, make_job):
    failed_job = make_job(status=Status.SUBMITTED_ERROR)
    url = reverse("admin:jobs_job_change", args=[failed_job.pk])

    page = superuser.get(url)

    assert page.status_code == 200
    html = page.content.decode()
    assert failed_job.tenant_id in html and "SUBMITTED_ERROR" in html
    fields = {field.name for field in Job._meta.fields}
    inputs = set(re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', html))
    assert inputs.isdisjoint(fields), inputs & fields
    assert 'name="_save"' not in html
    # Even a superuser's hand-made POST cannot write the job (it would overwrite concurrent
    # changes).
    response = superuser.post(url, {"status": "EXECUTION_COMPLETED", "_save": "Save"})
    assert response.status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.status == "SUBMITTED_ERROR"


# --- django-q2's admin and the first admin user -----------------------------------------------


def test_the_django_q_pages_render_for_a_superuser(superuser):
    ensure_schedules()
    success = _task(f"admin-test-{uuid.uuid4()}", success=True)
    failure = _task(f"admin-test-{uuid.uuid4()}", success=False)
    schedule = Schedule.objects.get(name=RECONCILE)
    Schedule.objects.filter(pk=schedule.pk).update(task=success.pk)

    pages = {
        "/admin/": "Django Q",
        "/admin/django_q/schedule/": RECONCILE,
        f"/admin/django_q/schedule/{schedule.pk}/change/": "orchestration.tasks.reconcile_task",
        "/admin/django_q/success/": success.name,
        f"/admin/django_q/success/?q={success.name}": success.name,
        f"/admin/django_q/success/{success.pk}/change/": success.name,
        "/admin/django_q/failure/": failure.name,
        f"/admin/django_q/failure/{failure.pk}/change/": failure.name,
    }
    for url, text in pages.items():
        response = superuser.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url
    # The schedule's last run links to its task (a subquery on the tasks, on MongoDB).
    schedules = superuser.get("/admin/django_q/schedule/").content.decode()
    assert f'href="/admin/django_q/success/{success.pk}/change/"' in schedules
    # django-q2's "Queued tasks" page exists for its ORM broker only; ours is MongoDB's or Redis.
    assert superuser.get("/admin/django_q/ormq/").status_code == 404


def test_failed_task_results_are_deleted_in_the_admin(superuser):
    # django-q2's save_limit bounds successes only; failures go by hand (README).
    failure = _task(f"admin-test-{uuid.uuid4()}", success=False)

    response = superuser.post(
        "/admin/django_q/failure/",
        {"action": "delete_selected", "_selected_action": [failure.pk], "post": "yes"},
        follow=True,
    )

    assert _messages(response) == ["Successfully deleted 1 Failed task."]
    assert not Task.objects.filter(pk=failure.pk).exists()


def test_the_first_admin_user_is_created_without_a_prompt(monkeypatch):
    username = f"admin-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough password 4 tests")

    call_command(
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
        stdout=io.StringIO(),
    )

    client = Client()
    # django-axes counts logins per address, so a login is made with the request it came in.
    login_request = RequestFactory().post("/admin/login/")
    assert client.login(
        request=login_request, username=username, password="a long enough password 4 tests"
    )
    assert client.get(CHANGELIST).status_code == 200


# --- Housekeeping -----------------------------------------------------------------------------


def test_successful_task_results_are_pruned_at_the_save_limit(monkeypatch):
    _task(f"prune-{uuid.uuid4()}", success=True)
    oldest = Success.objects.order_by("stopped").first()
    monkeypatch.setattr(Conf, "SAVE_LIMIT", Success.objects.count())
    newest = f"prune-{uuid.uuid4()}"

    # sync: the worker's save, minus closing the database connections first.
    save_task({**_task_package(newest, success=True), "sync": True}, broker=None)

    assert Success.objects.filter(name=newest).exists()
    assert not Success.objects.filter(pk=oldest.pk).exists()


def test_idempotency_keys_expire_by_a_ttl_index():
    collection = connection.get_collection(IdempotencyKey._meta.db_table)

    indexes = collection.index_information().values()

    ttl = [index for index in indexes if "expireAfterSeconds" in index]
    assert [(index["key"], index["expireAfterSeconds"]) for index in ttl] == [
        ([("expires_at", 1)], 0)
    ]


# --- helpers ----------------------------------------------------------------------------------


def _task_package(name: str, *, success: bool) -> dict:
    now = timezone.now()
    return {
        "id": uuid.uuid4().hex,
        "name": name,
        "func": "orchestration.tasks.orchestrate_job_task",
        "args": (),
        "kwargs": {},
        "hook": None,
        "started": now,
        "stopped": now,
        "result": None if success else "Traceback: boom",
        "success": success,
        "group": "orchestrate",
        "cluster": "admin-test",
    }


def _task(name: str, *, success: bool) -> Task:
    package = _task_package(name, success=success)
    return Task.objects.create(**package)
