"""The job API. Views validate input and call services; every queryset is the caller's own."""

import uuid
from contextlib import ExitStack
from functools import cached_property

from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from jobs import services
from jobs.api import callbacks, errors, idempotency, limits, listing, schema, waiting
from jobs.api.output import output_response
from jobs.api.throttling import OwnerRateThrottle
from jobs.api.uploads import stage_request_body, upload_slot
from jobs.models import Job
from jobs.queries import job_of_owner
from jobs.serializers import JobSerializer, job_document, request_base_url
from jobs.states import ERROR, Status
from orchestration.cancel import job_cancel
from orchestration.refresh import job_refresh


class JobViewSet(viewsets.GenericViewSet):
    serializer_class = JobSerializer
    # Only multipart is parsed (to disk); raw bodies are streamed by jobs.api.uploads itself.
    parser_classes = [MultiPartParser]
    # Per-owner rate limits (jobs/api/throttling.py), checked before the body is read: POST counts
    # against the `submit` rate (so does a cancel: both are writes), the listing, status and
    # output reads against the `read` rate (a status request held by `Prefer: wait` counts once).
    throttle_classes = [OwnerRateThrottle]
    throttle_scopes = {
        "create": "submit",
        "cancel": "submit",
        "list": "read",
        "status": "read",
        "output": "read",
    }

    def check_throttles(self, request):
        # An upload's slot (jobs/api/uploads.py) is taken first, right after authentication: a
        # refused upload then costs no database round trip (rate counter, active jobs), so a
        # crowd of stalled uploads cannot queue everyone else's requests behind its own. The
        # slot is given back when the answer is finalized, whatever it is.
        if self.action == "create":
            self._upload_slot = ExitStack()
            self._upload_slot.enter_context(upload_slot(owner=request.user))
        super().check_throttles(request)

    def finalize_response(self, request, response, *args, **kwargs):
        self._release_upload_slot()
        return super().finalize_response(request, response, *args, **kwargs)

    def _release_upload_slot(self) -> None:
        slot = getattr(self, "_upload_slot", None)
        if slot is not None:
            self._upload_slot = None
            slot.close()

    def perform_content_negotiation(self, request, force=False):
        # The output is the job's own bytes in its own content type, whatever the client's
        # Accept says; only our JSON error documents go through DRF's renderers there.
        return super().perform_content_negotiation(request, force=force or self.action == "output")

    def _document(self, job: Job) -> dict:
        # The document JobSerializer describes (and the schema shows), made by its plain
        # function: DRF's serializer around it only added its own per-call work.
        return job_document(job, base_url=self._base_url)

    @cached_property
    def _base_url(self) -> str:
        # Once per request: every link of the answer is under it.
        return request_base_url(self.request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()  # drf-spectacular inspecting the view: no caller
        # Another owner's job is simply not found: 404, never 403, and no downstream call.
        principal = self.request.user
        return Job.objects.filter(tenant_id=principal.tenant_id, sub=principal.sub)

    def get_object(self) -> Job:
        try:
            job_id = uuid.UUID(self.kwargs["job_id"])
        except ValueError as exc:
            raise errors.JobNotFound() from exc
        # get_queryset()'s filter, read without compiling an ORM query (jobs/queries.py).
        principal = self.request.user
        job = job_of_owner(tenant_id=principal.tenant_id, sub=principal.sub, job_id=job_id)
        if job is None:
            raise errors.JobNotFound()
        return job

    @extend_schema(**schema.SUBMIT)
    def create(self, request):
        # A malformed Idempotency-Key is refused before a byte of the body is read.
        key = idempotency.key_from_request(request)
        # So is a refused ?callback_url= (the SSRF guard, jobs/api/callbacks.py).
        callback_url = callbacks.callback_url_from_query(request)
        # So is an owner at its cap of jobs not final yet (jobs/api/limits.py).
        limits.check_active_jobs(owner=request.user, idempotency_key=key)
        # (The upload's slot was taken before all of these, in check_throttles.)
        # The body's sha256 is what an Idempotency-Key compares; nothing else needs it.
        upload = stage_request_body(request, digest=key is not None)
        try:
            callback_url = callbacks.callback_url_from_form(request, from_query=callback_url)
        except errors.InvalidCallbackURL:
            upload.path.unlink(missing_ok=True)  # no job will take this staged copy
            raise
        self._release_upload_slot()  # the body is read: what a slot guards is over

        def create_job() -> dict:
            job = services.job_create(
                tenant_id=request.user.tenant_id,
                sub=request.user.sub,
                staged_file=upload.path,
                size=upload.size,
                content_type=upload.content_type,
                callback_url=callback_url or "",
                # The webhook's links are built as this answer's are: from this Host.
                base_url=self._base_url,
            )
            return self._document(job)

        status_code, body = idempotency.answer_once(
            owner=request.user,
            key=key,
            upload=upload,
            create=create_job,
            callback_url=callback_url,
        )
        return Response(body, status=status_code, headers={"Location": body["links"]["status"]})

    @extend_schema(**schema.LIST)
    def list(self, request):
        query = listing.parse_list_query(request.query_params)
        owner = request.user
        jobs, cursor = listing.job_list(tenant_id=owner.tenant_id, sub=owner.sub, query=query)
        next_url = None
        if cursor:
            # The same filters and limit, from the next position on.
            params = request.query_params.copy()
            params["cursor"] = cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response({"results": [self._document(job) for job in jobs], "next": next_url})

    @extend_schema(**schema.STATUS)
    @action(detail=True, methods=["get"])
    def status(self, request, job_id: str):
        job = job_refresh(self.get_object())
        job, applied = waiting.job_wait_as_preferred(job, prefer=request.headers.get("Prefer"))
        headers = {} if applied is None else {"Preference-Applied": f"wait={applied}"}
        poll = waiting.retry_after(job)
        if poll is not None:
            headers["Retry-After"] = str(poll)
        response = Response(self._document(job), headers=headers)
        patch_vary_headers(response, ["Prefer"])
        return response

    @extend_schema(**schema.OUTPUT)
    @action(detail=True, methods=["get"])
    def output(self, request, job_id: str):
        job = job_refresh(self.get_object())
        if job.status == Status.CANCELLED:
            raise errors.JobCancelled()
        if job.status in ERROR:
            raise errors.JobFailed(f"The job ended in {job.status} and has no output.")
        if job.status != Status.EXECUTION_COMPLETED:
            raise errors.OutputNotReady(f"The job is {job.status}; its output is not ready.")
        # Range, If-Range and If-None-Match are BlobService's to answer (jobs/api/output.py).
        return output_response(job.blob_id, request.META, head=request.method == "HEAD")

    @extend_schema(**schema.CANCEL)
    @action(detail=True, methods=["post"])
    def cancel(self, request, job_id: str):
        job = job_cancel(self.get_object())
        if job.status == Status.CANCELLED:
            return Response(self._document(job))
        if job.status == Status.CANCELLING:
            # JobService has not confirmed yet; status requests and the reconciler finish it.
            return Response(self._document(job), status=202)
        # Final before the cancel, or finished in JobService just before the cancel arrived.
        raise errors.JobNotCancellable(f"The job is {job.status}; a final job cannot be cancelled.")
