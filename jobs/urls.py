from django.urls import path

from jobs.views import JobViewSet

urlpatterns = [
    path("job", JobViewSet.as_view({"post": "create"}), name="job-list"),
    path("job/<str:job_id>/status", JobViewSet.as_view({"get": "status"}), name="job-status"),
    path("job/<str:job_id>/output", JobViewSet.as_view({"get": "output"}), name="job-output"),
]
