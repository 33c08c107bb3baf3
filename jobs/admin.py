from collections import Counter

from django.contrib import admin, messages

from jobs.models import Job
from jobs.retries import job_retry


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant_id", "sub", "status", "attempts", "created_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("id", "tenant_id", "sub", "blob_id", "remote_job_id")
    readonly_fields = [field.name for field in Job._meta.fields]
    actions = ["retry_selected_jobs"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A job's staged input, blob and remote job would be orphaned; jobs are not deleted here.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The change permission only unlocks the retry action (asked without an object). A job
        # itself is never edited here: status changes go through job_transition, and saving the
        # form would write the whole document back over a worker's concurrent change. So the
        # change page is Django's view-only page, and a POST to it is refused.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    @admin.action(description="Retry selected jobs", permissions=["change"])
    def retry_selected_jobs(self, request, queryset):
        by = f"admin:{request.user.get_username()}"
        outcomes = [
            job_retry(job, by=by, reason="retried from admin")
            for job in queryset.order_by("updated_at", "pk")
        ]
        actions = Counter(outcome.action for outcome in outcomes)
        self.message_user(
            request,
            f"{actions['retry']} retried, {actions['requeue']} requeued, "
            f"{actions['skip']} skipped.",
            messages.SUCCESS if not actions["skip"] else messages.WARNING,
        )
        # One line per reason, not per job: a page of identical skips says nothing more.
        reasons = Counter(outcome.detail for outcome in outcomes if outcome.action == "skip")
        for detail, count in reasons.items():
            self.message_user(request, f"Skipped {count}: {detail}.", messages.WARNING)
