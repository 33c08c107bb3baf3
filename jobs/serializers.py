import re

import requests
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job
from jobs.states import ERROR

# A transport failure's message as the downstream client records it: requests' exception name,
# then its text, which names the service's host and port ("HTTPConnectionPool(host=...").
_TRANSPORT_ERROR = re.compile(r"(?P<name>[A-Za-z]+): ")


class JobErrorSerializer(serializers.Serializer):
    """Why a job is in an error state."""

    service = serializers.CharField(help_text="`blobservice`, `jobservice` or `frontservice`.")
    message = serializers.CharField()
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The downstream service's HTTP status, if it answered."
    )


class JobLinksSerializer(serializers.Serializer):
    status = serializers.URLField(help_text="This job's status.")
    output = serializers.URLField(help_text="This job's output, once `EXECUTION_COMPLETED`.")


class JobSerializer(serializers.ModelSerializer):
    """The job document returned by every endpoint."""

    callback_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "status", "created_at", "updated_at", "callback_url", "error", "links"]
        read_only_fields = fields

    @extend_schema_field(
        serializers.URLField(
            allow_null=True,
            help_text="Where the job document is POSTed, signed, when the job is final "
            "(`X-FrontService-*` headers); null without one.",
        )
    )
    def get_callback_url(self, job: Job) -> str | None:
        return job.callback_url or None

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job: Job) -> dict | None:
        if job.status not in ERROR or not job.error:
            return None
        error = {key: job.error.get(key) for key in ("service", "message", "status_code")}
        error["message"] = _public_message(error)
        return error

    @extend_schema_field(JobLinksSerializer)
    def get_links(self, job: Job) -> dict:
        request = self.context.get("request")

        def url(name: str) -> str:
            path = reverse(name, kwargs={"job_id": job.id})
            if request:
                return request.build_absolute_uri(path)
            # Outside a request (a webhook's document): the host the job was submitted to.
            return f"{job.base_url}{path}"

        return {"status": url("job-status"), "output": url("job-output")}


def _public_message(error: dict) -> str:
    """The error's message without internal hosts: a transport failure names only its kind."""
    message = error.get("message") or ""
    match = _TRANSPORT_ERROR.match(message)
    if error.get("status_code") is None and match and hasattr(requests.exceptions, match["name"]):
        return f"{match['name']} talking to {error.get('service')}"
    return message
