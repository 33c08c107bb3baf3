"""The job API. Views validate input and call services; every queryset is the caller's own."""

import uuid

from django.http import StreamingHttpResponse
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from jobs import errors, idempotency, services
from jobs.models import Job
from jobs.serializers import JobSerializer
from jobs.states import ERROR, Status
from jobs.uploads import stage_request_body
from orchestration.clients import blob_service
from orchestration.clients.http import DownstreamError


class JobViewSet(viewsets.GenericViewSet):
    serializer_class = JobSerializer
    # Only multipart is parsed (to disk); raw bodies are streamed by jobs.uploads itself.
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        # Another owner's job is simply not found: 404, never 403, and no downstream call.
        principal = self.request.user
        return Job.objects.filter(tenant_id=principal.tenant_id, sub=principal.sub)

    def get_object(self) -> Job:
        try:
            job_id = uuid.UUID(self.kwargs["job_id"])
        except ValueError as exc:
            raise errors.JobNotFound() from exc
        job = self.get_queryset().filter(pk=job_id).first()
        if job is None:
            raise errors.JobNotFound()
        return job

    def create(self, request):
        # A malformed Idempotency-Key is refused before a byte of the body is read.
        key = idempotency.key_from_request(request)
        upload = stage_request_body(request)

        def create_job() -> dict:
            job = services.job_create(
                tenant_id=request.user.tenant_id,
                sub=request.user.sub,
                staged_file=upload.path,
                size=upload.size,
                content_type=upload.content_type,
            )
            return self.get_serializer(job).data

        status_code, body = idempotency.answer_once(
            owner=request.user, key=key, upload=upload, create=create_job
        )
        return Response(body, status=status_code, headers={"Location": body["links"]["status"]})

    @action(detail=True, methods=["get"])
    def status(self, request, job_id: str):
        job = services.job_refresh(self.get_object())
        return Response(self.get_serializer(job).data)

    @action(detail=True, methods=["get"])
    def output(self, request, job_id: str):
        job = services.job_refresh(self.get_object())
        if job.status in ERROR:
            raise errors.JobFailed(f"The job ended in {job.status} and has no output.")
        if job.status != Status.EXECUTION_COMPLETED:
            raise errors.OutputNotReady(f"The job is {job.status}; its output is not ready.")
        try:
            blob = blob_service.open_blob(job.blob_id)
        except DownstreamError as exc:
            raise errors.DownstreamUnavailable("The output could not be fetched.") from exc
        response = StreamingHttpResponse(_chunks(blob), content_type=blob.content_type)
        if blob.content_length is not None:
            response["Content-Length"] = str(blob.content_length)
        return response


def _chunks(blob):
    # A generator: Django closes it when the response ends, which closes the upstream stream.
    try:
        yield from blob.iter_chunks()
    finally:
        blob.close()
