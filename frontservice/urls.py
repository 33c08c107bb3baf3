from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from frontservice.health import healthz, readyz
from frontservice.metrics import metrics_view

urlpatterns = [
    path("api/v1/", include("jobs.api.urls")),
    # Public, like the docs: the schema describes the API and holds no data (docs/api.md).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    # Probes and scrapes, without a JWT (docs/operations.md).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "jobs.api.errors.handler400"
handler403 = "jobs.api.errors.handler403"
handler404 = "jobs.api.errors.handler404"
handler500 = "jobs.api.errors.handler500"
