"""The operators' tools: the Django admin (jobs and django-q2) and `manage.py jobs_summary`.

Pages are rendered in-process with Django's test Client on the shared test database. Jobs made
with the ORM belong to owners of their own and are deleted afterwards, so that no stray
CREATED/STORED/SUBMITTED job is left for other tests to wait on. Tests in which a worker or
JobService must act use the stack.
"""

import io
import json
import re
import time
import uuid
from datetime import timedelta
from html import unescape

import pytest
import requests
from bson import ObjectId
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.brokers.mongo import Mongo
from django_q.conf import Conf
from django_q.models import Schedule, Success, Task
from django_q.monitor import save_task

from frontservice.broker import ForkSafeMongo
from jobs.admin import TenantFilter
from jobs.models import IdempotencyKey, Job
from jobs.states import Status
from orchestration.schedules import RECONCILE, ensure_schedules
from tests.support.admin import JOIN_FREE_BACKEND, logged_in, staff_user
from tests.support.api import submit, wait_for_status, wait_for_stored_status

CHANGELIST = "/admin/jobs/job/"
RETRY = "retry_selected_jobs"
REFRESH = "refresh_selected_jobs"
RESEND = "resend_selected_webhooks"


@pytest.fixture
def granted_permissions_work(settings):
    settings.AUTHENTICATION_BACKENDS = [JOIN_FREE_BACKEND]


@pytest.fixture
def make_job():
    """Jobs put in any state with the ORM, each with an owner of its own; deleted afterwards."""
    made = []

    def make(**fields) -> Job:
        hex_ = uuid.uuid4().hex[:10]
        fields = {
            "tenant_id": f"tenant-{hex_}",
            "sub": f"sub-{hex_}",
            "status": Status.EXECUTION_COMPLETED,
            **fields,
        }
        job = Job.objects.create(**fields)
        made.append(job.pk)
        return job

    yield make
    Job.objects.filter(pk__in=made).delete()


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


def _action(client: Client, action: str, *jobs: Job, follow: bool = True):
    selected = [str(job.pk) for job in jobs]
    return client.post(CHANGELIST, {"action": action, "_selected_action": selected}, follow=follow)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _offered_actions(client: Client) -> list[str]:
    return re.findall(r'<option value="(\w+)"', client.get(CHANGELIST).content.decode())


def _wait_for_task_results(job_id: str, count: int, timeout: float = 15) -> None:
    # The cluster saves a task's result just after the task returns.
    deadline = time.monotonic() + timeout
    while Success.objects.filter(name=f"orchestrate-{job_id}").count() < count:
        assert time.monotonic() < deadline, f"no {count} task results for job {job_id}"
        time.sleep(0.05)


# --- The changelist: columns, filters, search -------------------------------------------------


def test_the_changelist_shows_the_columns_operators_need(superuser, make_job):
    job = make_job(attempts=2)

    page = superuser.get(CHANGELIST, {"tenant": job.tenant_id})

    assert _listed(page) == {job.pk}
    headers = re.findall(r'<th scope="col"[^>]*class="[^"]*column-(\w+)', page.content.decode())
    assert headers == [
        "id",
        "tenant_id",
        "sub",
        "status",
        "created_at",
        "updated_at",
        "attempts",
    ]


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


def test_the_job_page_shows_history_error_and_task_links(quiet_stack, superuser, alice):
    stack = quiet_stack
    stack.faults("job", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(stack, alice, b"see me in the admin")["id"]
    wait_for_stored_status(job_id, {"SUBMITTED_ERROR"})
    _wait_for_task_results(job_id, 1)

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
    name = f"orchestrate-{job_id}"
    assert f'<a href="/admin/django_q/success/?name={name}">1 successful</a>' in html
    assert f'<a href="/admin/django_q/failure/?name={name}">0 failed</a>' in html
    assert re.search(r"\d+ waiting, \d+ in flight", html)
    # The link lists that job's task.
    tasks = superuser.get("/admin/django_q/success/", {"name": name})
    assert [task.name for task in tasks.context["cl"].result_list] == [name]


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


# --- Actions ----------------------------------------------------------------------------------


def test_an_operator_retries_a_failed_job_and_it_completes(quiet_stack, operator, alice):
    stack = quiet_stack
    stack.faults("blob", fail_next=1, status=400, methods=["PUT"])
    job_id = submit(stack, alice, b"retry me")["id"]
    job = wait_for_stored_status(job_id, {"STORED_ERROR"})

    response = _action(operator, RETRY, job)

    assert _messages(response) == ["1 retried, 0 requeued, 0 skipped."]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    retry = Job.objects.get(pk=job_id).history[1]
    assert (retry["from"], retry["to"], retry["reason"]) == (
        "STORED_ERROR",
        "CREATED",
        "retried from admin",
    )
    assert retry["by"].startswith("admin:staff-")
    assert stack.stats("job")["executions"][job_id] == 1


def test_an_operator_refreshes_a_submitted_job_that_jobservice_finished(
    stack, operator, alice, make_job
):
    job_id = submit(stack, alice, b"refresh me")["id"]
    job = wait_for_stored_status(job_id, {"SUBMITTED"})
    _wait_for_remote(stack, job_id, "SUCCEEDED")
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


def test_a_job_still_running_stays_submitted_when_refreshed(stack, operator, make_job):
    # JobService has no such job: the refresh fails, and the last known status is kept.
    job = make_job(status=Status.SUBMITTED, remote_job_id=str(uuid.uuid4()))

    response = _action(operator, REFRESH, job)

    assert _messages(response)[0] == (
        "1 refreshed: 0 changed, 1 still SUBMITTED; 0 skipped (not SUBMITTED)."
    )
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED


def test_the_actions_are_offered_to_operators_only(operator, granted_permissions_work):
    viewer = logged_in(staff_user(perms=("view_job",)))

    assert set(_offered_actions(operator)) == {RETRY, REFRESH, RESEND}
    assert _offered_actions(viewer) == []


@pytest.mark.parametrize("action", [RETRY, REFRESH, RESEND])
def test_staff_who_may_only_view_cannot_run_an_action(granted_permissions_work, make_job, action):
    viewer = logged_in(staff_user(perms=("view_job",)))
    job = make_job(status=Status.SUBMITTED_ERROR)

    response = _action(viewer, action, job)

    # Django ignores an action that is not offered: the list again, no message.
    assert response.status_code == 200 and _messages(response) == []
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED_ERROR and job.history == []


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
    assert client.login(username=username, password="a long enough password 4 tests")
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


# --- manage.py jobs_summary -------------------------------------------------------------------


@pytest.fixture
def tenant_jobs(make_job):
    """A fresh tenant's jobs: two stuck in CREATED (one for 2 h), one SUBMITTED, one done."""
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    stuck = make_job(tenant_id=tenant, status=Status.CREATED)
    fresh = make_job(tenant_id=tenant, status=Status.CREATED)
    submitted = make_job(tenant_id=tenant, status=Status.SUBMITTED)
    make_job(tenant_id=tenant, status=Status.EXECUTION_COMPLETED)
    Job.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    Job.objects.filter(pk=submitted.pk).update(updated_at=timezone.now() - timedelta(minutes=10))
    return {"tenant": tenant, "stuck": stuck, "fresh": fresh, "submitted": submitted}


def _summary(*args: str) -> str:
    out = io.StringIO()
    call_command("jobs_summary", *args, stdout=out)
    return out.getvalue()


def test_the_summary_counts_a_tenants_jobs_and_names_the_stuck_ones(tenant_jobs):
    text = _summary(
        "--tenant", tenant_jobs["tenant"], "--stuck-after", "3600", "--refresh-after", "300"
    )

    lines = text.splitlines()
    assert len(lines) <= 40, text
    assert f"(tenant {tenant_jobs['tenant']})" in lines[0]
    assert "Jobs by status (4 in all)" in lines
    counts = dict(re.findall(r"^  (\w+)\s+(\d+)$", text, re.M))
    assert counts == {
        "CREATED": "2",
        "STORED": "0",
        "STORED_ERROR": "0",
        "SUBMITTED": "1",
        "SUBMITTED_ERROR": "0",
        "EXECUTION_COMPLETED": "1",
        "EXECUTION_ERROR": "0",
        "CANCELLING": "0",
        "CANCELLED": "0",
    }
    assert "  CREATED/STORED unchanged for 1h or more: 1" in lines
    assert f"    {tenant_jobs['stuck'].pk}  CREATED    2h" in lines
    assert "  SUBMITTED unchanged for 5m or more: 1" in lines
    assert f"    {tenant_jobs['submitted'].pk}  SUBMITTED  10m" in lines
    assert "  CANCELLING unchanged for 5m or more: 0" in lines
    assert str(tenant_jobs["fresh"].pk) not in text
    assert re.search(r"^  \d+ waiting, \d+ in flight; oldest waiting: ", text, re.M)
    assert re.search(r"^Tasks in the last hour: \d+ succeeded, \d+ failed$", text, re.M)
    assert re.search(r"^Idempotency keys: \d+ \(\d+ expired, not removed yet\)$", text, re.M)


def test_the_summary_as_json_counts_every_tenant(tenant_jobs):
    summary = json.loads(_summary("--json"))

    by_status = summary["jobs"]["by_status"]
    assert set(by_status) == set(Status.values)
    assert by_status["CREATED"] >= 2 and by_status["SUBMITTED"] >= 1
    assert summary["jobs"]["total"] == sum(by_status.values()) >= 4
    assert summary["tenant"] is None
    assert set(summary["stuck"]) == {"created_or_stored", "submitted", "cancelling"}
    assert summary["queue"]["broker"] == "mongodb"
    assert summary["tasks"]["save_limit"] == Conf.SAVE_LIMIT
    assert set(summary["staging"]) >= {"inputs", "input_bytes", "partial_uploads"}
    assert summary["idempotency_keys"]["ttl_seconds"] > 0


def test_the_summary_counts_the_staging_area(settings, tmp_path):
    settings.STAGING_DIR = str(tmp_path)
    (tmp_path / "tmp").mkdir()
    (tmp_path / str(uuid.uuid4())).write_bytes(b"x" * 1000)
    (tmp_path / str(uuid.uuid4())).write_bytes(b"x" * 2000)
    (tmp_path / "tmp" / "upload-abc").write_bytes(b"x" * 10)
    (tmp_path / "not-an-input").write_bytes(b"x")

    staging = json.loads(_summary("--json"))["staging"]

    assert staging == {
        "dir": str(tmp_path),
        "inputs": 2,
        "input_bytes": 3000,
        "partial_uploads": 1,
        "partial_bytes": 10,
    }
    assert "2 inputs (2.9 KiB), 1 partial uploads (10 B)" in _summary()


def test_the_summary_tells_the_age_of_the_oldest_waiting_task(monkeypatch):
    # A queue of its own (no worker takes from it), on the same MongoDB.
    broker = ForkSafeMongo(list_key=f"summary-test-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr("jobs.management.commands.jobs_summary.process_broker", lambda: broker)
    waiting = timezone.now() - timedelta(seconds=Conf.RETRY + 1)
    try:
        broker.collection.insert_one(
            {"_id": ObjectId.from_datetime(timezone.now() - timedelta(minutes=5)), "lock": waiting}
        )
        broker.enqueue("a newer task")
        broker.collection.insert_one({"payload": "delivered", "lock": timezone.now()})

        queue = json.loads(_summary("--json"))["queue"]

        assert (queue["waiting"], queue["in_flight"]) == (2, 1)
        assert 299 <= queue["oldest_waiting_seconds"] < 330
        assert "  2 waiting, 1 in flight; oldest waiting: 5m" in _summary()
    finally:
        broker.delete_queue()


def test_the_summary_peeks_at_a_redis_queue(monkeypatch):
    redis = pytest.importorskip("redis")
    from django_q.brokers.redis_broker import Redis
    from django_q.signing import SignedPackage

    broker = Redis(list_key=f"summary-test-{uuid.uuid4().hex[:8]}")
    try:
        broker.connection.ping()
    except redis.RedisError:
        pytest.skip("no Redis at the default address")
    monkeypatch.setattr("jobs.management.commands.jobs_summary.process_broker", lambda: broker)
    try:
        started = timezone.now() - timedelta(minutes=3)
        broker.enqueue(SignedPackage.dumps({"id": "x", "started": started}))
        broker.enqueue(SignedPackage.dumps({"id": "y", "started": timezone.now()}))

        queue = json.loads(_summary("--json"))["queue"]

        assert (queue["waiting"], queue["in_flight"]) == (2, None)
        assert 179 <= queue["oldest_waiting_seconds"] < 200
    finally:
        broker.delete_queue()


def test_the_summary_still_prints_when_the_broker_is_down(monkeypatch):
    class Down(Mongo):
        def __init__(self):
            pass

        def queue_size(self):
            raise ConnectionError("broker down")

    monkeypatch.setattr("jobs.management.commands.jobs_summary.process_broker", Down)

    assert "  unavailable: ConnectionError: broker down" in _summary()


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


def _wait_for_remote(stack, job_id: str, status: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remote = requests.get(f"{stack.urls['job']}/jobs/{job_id}", timeout=5).json()
        if remote["status"] == status:
            return
        assert time.monotonic() < deadline, f"JobService: {job_id} is {remote['status']}"
        time.sleep(0.05)
