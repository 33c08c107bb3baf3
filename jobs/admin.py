"""The job admin: find jobs, read one whole, retry or refresh them, send a failed webhook again.
Nothing is edited by hand.

A job changes only through job_transition (compare-and-set on its status, with a history entry),
so the change page is Django's view-only page and the change permission unlocks the actions.
"""

import json
import uuid
from collections import Counter
from datetime import datetime

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django_q.models import Failure, Success

from frontservice import mongo
from frontservice.broker import process_broker
from jobs.models import Job
from jobs.states import Status
from orchestration.refresh import job_refresh
from orchestration.resend import job_resend
from webhooks.models import WebhookDelivery
from webhooks.resend import webhook_resend

# "View site" at the top of every admin page: the API's documentation, not a 404 at `/`.
admin.site.site_url = "/api/docs/"

# The tenant filter lists this many tenants (alphabetically); any other is one search away.
TENANT_FILTER_LIMIT = 50
# One action call refreshes at most this many jobs: each is a JobService call inside the
# request. `manage.py reconcile --refresh-after 0` refreshes any number.
REFRESH_LIMIT = 100
_HISTORY_COLUMNS = ("at", "from", "to", "reason", "by")
_ATTEMPT_COLUMNS = ("attempt", "at", "address", "status_code", "error", "duration_ms")


class WebhookDeliveryInline(admin.TabularInline):
    """A job's webhook events and every attempt to send them; read only, like the job."""

    model = WebhookDelivery
    fk_name = "job"
    extra = 0
    can_delete = False
    show_change_link = False
    fields = ("id", "event", "job_status", "status", "url", "attempts_table", "created_at")
    readonly_fields = fields
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Attempts")
    def attempts_table(self, delivery: WebhookDelivery) -> str:
        if not delivery.attempts:
            return "No attempt yet."
        header = format_html_join("", "<th>{}</th>", ((name,) for name in _ATTEMPT_COLUMNS))
        rows = format_html_join(
            "\n",
            "<tr>" + "<td>{}</td>" * len(_ATTEMPT_COLUMNS) + "</tr>",
            (
                tuple(
                    _when(entry.get("at")) if name == "at" else _or_dash(entry.get(name))
                    for name in _ATTEMPT_COLUMNS
                )
                for entry in delivery.attempts
            ),
        )
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, rows
        )


class TenantFilter(admin.SimpleListFilter):
    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        # `distinct` on the collection walks the owner index (tenant_id first) once per tenant;
        # the ORM's values_list().distinct() also works here, but as a $group over every job.
        tenants = sorted(mongo.distinct(Job, "tenant_id"))[:TENANT_FILTER_LIMIT]
        selected = self.value()
        if selected and selected not in tenants:
            tenants.append(selected)  # a tenant past the limit still shows as selected
        return [(tenant, tenant) for tenant in tenants]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(tenant_id=self.value())
        return queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    # A laptop screen beside the filters: the id's first 8 characters (the whole id is on the
    # job's page and found by the search), times to the second.
    list_display = ("short_id", "tenant_id", "sub", "status", "created", "updated", "attempts")
    # The job's API document needs the owner's token, so a link to it from the admin would be a
    # 401; the admin's own page shows the whole job.
    view_on_site = False
    # created_at: Django's date ranges (today, past 7 days, this month, this year). The date
    # hierarchy works on this backend too, but costs a $group over the jobs on every page.
    list_filter = ("status", TenantFilter, "created_at")
    # The id is searched in get_search_results: icontains on a UUIDField is refused by
    # django-mongodb-backend. The blob and remote job ids are the job id, so a part of an id
    # finds a job that has reached BlobService.
    search_fields = ("tenant_id", "sub", "blob_id", "remote_job_id")
    search_help_text = "A whole job id, or part of a tenant, sub, blob id or remote job id."
    ordering = ("-created_at",)
    # One count per page, not two: the unfiltered total is another pass over the collection.
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    ("tenant_id", "sub"),
                    "status",
                    "attempts",
                    ("created_at", "updated_at", "checked_at"),
                )
            },
        ),
        ("Input", {"fields": ("content_type", "input_size", "blob_id", "remote_job_id")}),
        ("Status history", {"fields": ("history_table",)}),
        ("Last downstream error", {"fields": ("error_details",)}),
        (
            "Completion webhook",
            {
                "fields": (
                    "callback_url",
                    ("webhook_status", "webhook_delivery_id", "webhook_claimed_at"),
                    "base_url",
                )
            },
        ),
        ("Background tasks", {"fields": ("orchestration_tasks", "queue")}),
    )
    readonly_fields = [
        *(field.name for field in Job._meta.fields),
        "history_table",
        "error_details",
        "orchestration_tasks",
        "queue",
    ]
    actions = ["retry_selected_jobs", "refresh_selected_jobs", "resend_selected_webhooks"]
    inlines = [WebhookDeliveryInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A job's staged input, blob and remote job would be orphaned; jobs are not deleted here.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The change permission only unlocks the actions (asked without an object). A job
        # itself is never edited here: status changes go through job_transition, and saving the
        # form would write the whole document back over a worker's concurrent change. So the
        # change page is Django's view-only page, and a POST to it is refused.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    @admin.display(description="id", ordering="pk")
    def short_id(self, job: Job) -> str:
        return format_html('<span title="{}">{}</span>', job.id, str(job.id)[:8])

    @admin.display(description="created (UTC)", ordering="created_at")
    def created(self, job: Job) -> str:
        return _second(job.created_at)

    @admin.display(description="updated (UTC)", ordering="updated_at")
    def updated(self, job: Job) -> str:
        return _second(job.updated_at)

    def get_search_results(self, request, queryset, search_term):
        try:
            job_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        # A whole id: that job, by its primary key (and any job whose blob or remote job
        # carries this id), within the filters already applied.
        text = str(job_id)
        return queryset.filter(Q(pk=job_id) | Q(blob_id=text) | Q(remote_job_id=text)), False

    @admin.display(description="History")
    def history_table(self, job: Job) -> str:
        if not job.history:
            return "No status change yet."
        header = format_html_join("", "<th>{}</th>", ((name,) for name in _HISTORY_COLUMNS))
        rows = format_html_join(
            "\n",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _when(entry.get("at")),
                    entry.get("from", "-"),
                    entry.get("to", "-"),
                    entry.get("reason", ""),
                    entry.get("by", "-"),
                )
                for entry in job.history
            ),
        )
        return format_html(
            "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", header, rows
        )

    @admin.display(description="Error")
    def error_details(self, job: Job) -> str | None:
        if not job.error:
            return None  # shown as the admin's empty value
        return format_html("<pre>{}</pre>", json.dumps(job.error, indent=2, sort_keys=True))

    @admin.display(description="Orchestration tasks")
    def orchestration_tasks(self, job: Job) -> str:
        # django-q2 keeps each finished task's result under the name it was enqueued with.
        name = f"orchestrate-{job.id}"
        links = [
            (
                reverse(f"admin:django_q_{model._meta.model_name}_changelist")
                + "?"
                + urlencode({"name": name}),
                model.objects.filter(name=name).count(),
                label,
            )
            for model, label in ((Success, "successful"), (Failure, "failed"))
        ]
        return format_html(
            "{} (task name <code>{}</code>)",
            format_html_join(" · ", '<a href="{}">{} {}</a>', links),
            name,
        )

    @admin.display(description="Queue (all jobs)")
    def queue(self, job: Job) -> str:
        # The broker's queue is not a Django model (django-q2's "Queued tasks" page is only for
        # its ORM broker), so its depth is shown here and by `manage.py jobs_summary`.
        try:
            broker = process_broker()
            waiting, in_flight = broker.queue_size(), broker.lock_size()
        except Exception as exc:
            return f"unavailable ({type(exc).__name__})"
        if in_flight is None:  # Redis: no delivery receipts, so nothing is held in flight
            return f"{waiting} waiting"
        return f"{waiting} waiting, {in_flight} in flight"

    @admin.action(description="Retry selected jobs", permissions=["change"])
    def retry_selected_jobs(self, request, queryset):
        by = f"admin:{request.user.get_username()}"
        jobs = list(queryset.order_by("updated_at", "pk"))
        outcomes = [job_resend(job, by=by, reason="retried from admin") for job in jobs]
        self._log_actions(
            request,
            jobs,
            outcomes,
            done=("retry", "requeue"),
            message=lambda o: f"{o.action} from admin: {o.from_status} -> {o.to_status}",
        )
        actions = Counter(outcome.action for outcome in outcomes)
        self.message_user(
            request,
            f"{actions['retry']} retried, {actions['requeue']} requeued, "
            f"{actions['skip']} skipped.",
            messages.SUCCESS if not actions["skip"] else messages.WARNING,
        )
        self._skip_reasons(request, outcomes)

    @admin.action(description="Send webhook again", permissions=["change"])
    def resend_selected_webhooks(self, request, queryset):
        # Only FAILED webhooks are sent again, each as a new event (webhooks/resend.py).
        by = f"admin:{request.user.get_username()}"
        jobs = list(queryset.order_by("updated_at", "pk"))
        outcomes = [webhook_resend(job, by=by, reason="from admin") for job in jobs]
        self._log_actions(
            request,
            jobs,
            outcomes,
            done=("resend",),
            message=lambda o: f"webhook sent again from admin (delivery {o.delivery_id})",
        )
        sent = sum(outcome.action == "resend" for outcome in outcomes)
        skipped = len(outcomes) - sent
        self.message_user(
            request,
            f"{sent} sent again, {skipped} skipped.",
            messages.SUCCESS if not skipped else messages.WARNING,
        )
        self._skip_reasons(request, outcomes)

    def _log_actions(self, request, jobs, outcomes, *, done: tuple[str, ...], message) -> None:
        # Django's admin log, so the job's History page shows who did what from here (the job's
        # own status history has the transitions themselves). Skipped jobs were not acted on.
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome.action in done:
                self.log_change(request, job, message(outcome))

    def _skip_reasons(self, request, outcomes) -> None:
        # One line per reason, not per job: a page of identical skips says nothing more.
        reasons = Counter(outcome.detail for outcome in outcomes if outcome.action == "skip")
        for detail, count in reasons.items():
            self.message_user(request, f"Skipped {count}: {detail}.", messages.WARNING)

    @admin.action(description="Refresh status from JobService", permissions=["change"])
    def refresh_selected_jobs(self, request, queryset):
        submitted = queryset.filter(status=Status.SUBMITTED).order_by("updated_at", "pk")
        jobs = list(submitted[: REFRESH_LIMIT + 1])
        skipped = queryset.exclude(status=Status.SUBMITTED).count()
        changed = Counter()
        for job in jobs[:REFRESH_LIMIT]:
            # job_refresh compares and sets like every status change, and keeps the job as it
            # is when JobService cannot be reached (logged).
            status = job_refresh(job).status
            changed[status] += 1
            self.log_change(request, job, f"refreshed from JobService: {status}")
        refreshed = min(len(jobs), REFRESH_LIMIT)
        unchanged = changed.pop(Status.SUBMITTED, 0)
        outcome = ", ".join(f"{count} {status}" for status, count in sorted(changed.items()))
        self.message_user(
            request,
            f"{refreshed} refreshed: {sum(changed.values())} changed"
            + (f" ({outcome})" if outcome else "")
            + f", {unchanged} still SUBMITTED; {skipped} skipped (not SUBMITTED).",
            messages.SUCCESS,
        )
        if unchanged:
            self.message_user(
                request,
                "A job still SUBMITTED is running in JobService, or JobService did not answer "
                "(see the log).",
                messages.INFO,
            )
        if len(jobs) > REFRESH_LIMIT:
            self.message_user(
                request,
                f"Only the {REFRESH_LIMIT} least recently changed were refreshed; "
                "`manage.py reconcile --refresh-after 0` refreshes any number.",
                messages.WARNING,
            )


def _second(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _or_dash(value) -> str:
    return "-" if value is None or value == "" else str(value)


def _when(at: str | None) -> str:
    """A history timestamp (ISO 8601, UTC) to the second; a malformed one as it is."""
    try:
        return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except (TypeError, ValueError):
        return at or "-"
