from django.urls import reverse
from rest_framework import serializers

from jobs.models import Job
from jobs.states import ERROR


class JobSerializer(serializers.ModelSerializer):
    """The job document returned by every endpoint."""

    error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "status", "created_at", "updated_at", "error", "links"]
        read_only_fields = fields

    def get_error(self, job: Job) -> dict | None:
        if job.status not in ERROR or not job.error:
            return None
        return {key: job.error.get(key) for key in ("service", "message", "status_code")}

    def get_links(self, job: Job) -> dict:
        request = self.context.get("request")

        def url(name: str) -> str:
            path = reverse(name, kwargs={"job_id": job.id})
            return request.build_absolute_uri(path) if request else path

        return {"status": url("job-status"), "output": url("job-output")}
