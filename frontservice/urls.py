from django.contrib import admin
from django.urls import include, path

from frontservice.health import healthz

urlpatterns = [
    path("api/v1/", include("jobs.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]

handler404 = "jobs.errors.handler404"
handler500 = "jobs.errors.handler500"
