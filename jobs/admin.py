from django.contrib import admin

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant_id", "sub", "status", "created_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("id", "tenant_id", "sub", "blob_id", "remote_job_id")
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
