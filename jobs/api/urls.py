from django.urls import path

from jobs.api.views import JobViewSet

# `path`, not `str`: an id with a (percent-encoded) slash in it, "..%2F..", must reach the view
# and be the same 404 job_not_found as any other id that is not the caller's job, not a
# routing 404 with another body.
urlpatterns = [
    path("job", JobViewSet.as_view({"post": "create", "get": "list"}), name="job-list"),
    path("job/<path:job_id>/status", JobViewSet.as_view({"get": "status"}), name="job-status"),
    path("job/<path:job_id>/output", JobViewSet.as_view({"get": "output"}), name="job-output"),
    path("job/<path:job_id>/cancel", JobViewSet.as_view({"post": "cancel"}), name="job-cancel"),
]
