import functools
import re
from datetime import UTC, datetime

import requests
from django.urls import get_script_prefix, reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job
from jobs.states import ERROR, Status

# A transport failure's message as the downstream client records it: requests' exception name,
# then its text, which names the service's host and port ("HTTPConnectionPool(host=...").
_TRANSPORT_ERROR = re.compile(r"(?P<name>[A-Za-z]+): ")

# `error.code`: one stable code per error state, whatever the service said (docs/api.md "Errors").
ERROR_CODES = {
    Status.STORED_ERROR: "store_failed",  # BlobService did not take the input
    Status.SUBMITTED_ERROR: "submit_failed",  # JobService did not take the job
    Status.EXECUTION_ERROR: "execution_failed",  # JobService ran the job and it failed
}
# A run starts again from these (an operator's retry): what came before is a past run.
_RUN_STARTS = {Status.CREATED, Status.STORED}


class JobErrorSerializer(serializers.Serializer):
    """Why a job is in an error state."""

    code = serializers.CharField(
        help_text="Stable, one per error state: `store_failed` (`STORED_ERROR`), "
        "`submit_failed` (`SUBMITTED_ERROR`), `execution_failed` (`EXECUTION_ERROR`).",
    )
    service = serializers.CharField(help_text="`blobservice`, `jobservice` or `frontservice`.")
    message = serializers.CharField()
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The downstream service's HTTP status, if it answered."
    )


class LastErrorSerializer(serializers.Serializer):
    """The transient failure a job is waiting out (it is retried; no error state yet)."""

    service = serializers.CharField(help_text="`blobservice` or `jobservice`.")
    message = serializers.CharField()
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The downstream service's HTTP status, if it answered."
    )


class JobLinksSerializer(serializers.Serializer):
    status = serializers.URLField(help_text="This job's status.")
    output = serializers.URLField(help_text="This job's output, once `EXECUTION_COMPLETED`.")
    cancel = serializers.URLField(help_text="POST here to cancel this job.")


class JobSerializer(serializers.ModelSerializer):
    """The job document returned by every endpoint.

    The fields below describe the document (the OpenAPI schema is generated from them); the
    document itself is built by `job_document`, a plain function. DRF's ModelSerializer builds
    its fields anew for every instance and converts each value through a Field object, which
    made this document the largest single cost of a status request; the test
    tests/jobs/test_serializers.py checks that both give the same document.
    """

    submitted_at = serializers.SerializerMethodField()
    finished_at = serializers.SerializerMethodField()
    callback_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    last_error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "status",
            "created_at",
            "updated_at",
            "submitted_at",
            "finished_at",
            "attempts",
            "next_attempt_at",
            "last_error",
            "input_size",
            "content_type",
            "callback_url",
            "error",
            "links",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "attempts": {
                "help_text": "Downstream attempts of the current step (storing the input, then "
                "submitting it) that failed, or of the step that ended the job in an error state; "
                "0 once a step succeeds."
            },
            "next_attempt_at": {
                "help_text": "While the job waits after a transient downstream failure: when its "
                "next attempt is due (it may wait longer while the service is down). Null "
                "otherwise."
            },
            "input_size": {"help_text": "The input's size in bytes."},
            "content_type": {"help_text": "The input's media type, also the output's."},
        }

    def to_representation(self, job: Job) -> dict:
        return job_document(job, base_url=self._base_url(job))

    def _base_url(self, job: Job) -> str:
        request = self.context.get("request")
        if request is None:
            # Outside a request (a webhook's document): the host the job was submitted to.
            return job.base_url
        # One serializer makes every document of a listing: the request's base once.
        if getattr(self, "_request_base", None) is None:
            self._request_base = request_base_url(request)
        return self._request_base

    @extend_schema_field(
        serializers.DateTimeField(
            allow_null=True, help_text="When the job reached `SUBMITTED` (JobService took it)."
        )
    )
    def get_submitted_at(self, job: Job) -> str | None:
        return _iso(_current_run(job).get(Status.SUBMITTED))

    @extend_schema_field(
        serializers.DateTimeField(
            allow_null=True, help_text="When the job reached its final status; null until then."
        )
    )
    def get_finished_at(self, job: Job) -> str | None:
        return _iso(_finished_at(job, _current_run(job)))

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
        return _error(job)

    @extend_schema_field(LastErrorSerializer(allow_null=True))
    def get_last_error(self, job: Job) -> dict | None:
        return _last_error(job)

    @extend_schema_field(JobLinksSerializer)
    def get_links(self, job: Job) -> dict:
        return _links(job, base_url=self._base_url(job))


def request_base_url(request) -> str:
    """The scheme and host a request came to ("https://api.example.com"): the job document's
    links are under it.

    What build_absolute_uri("/") gives without its trailing slash, without its general work
    (joining and quoting a path), which cost as much as the job document itself: get_host() has
    already refused any Host that is not in ALLOWED_HOSTS and spelled as a host name, an IP
    address or [IPv6], with an optional port, so nothing in it needs quoting."""
    return f"{request.scheme}://{request.get_host()}"


def job_document(job: Job, *, base_url: str) -> dict:
    """The job document (JobSerializer's fields say what each key means); links under
    `base_url`, the scheme and host the request came to ("https://api.example.com")."""
    run = _current_run(job)
    return {
        "id": str(job.id),
        "status": str(job.status),
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "submitted_at": _iso(run.get(Status.SUBMITTED)),
        "finished_at": _iso(_finished_at(job, run)),
        "attempts": job.attempts,
        "next_attempt_at": _iso(job.next_attempt_at),
        "last_error": _last_error(job),
        "input_size": job.input_size,
        "content_type": job.content_type,
        "callback_url": job.callback_url or None,
        "error": _error(job),
        "links": _links(job, base_url=base_url),
    }


def _finished_at(job: Job, run: dict[str, datetime]) -> datetime | None:
    return run.get(job.status) if job.is_final else None


def _error(job: Job) -> dict | None:
    if job.status not in ERROR or not job.error:
        return None
    return {"code": ERROR_CODES.get(job.status, "failed"), **_public_error(job.error)}


def _last_error(job: Job) -> dict | None:
    if job.status in ERROR or not job.error or job.next_attempt_at is None:
        return None
    return _public_error(job.error)


def _public_error(stored: dict) -> dict:
    """What a user sees of a stored downstream error: its service, status and public message."""
    error = {key: stored.get(key) for key in ("service", "message", "status_code")}
    error["message"] = _public_message(error)
    return error


def _links(job: Job, *, base_url: str) -> dict:
    job_id = str(job.id)
    return {
        name: f"{base_url}{before}{job_id}{after}"
        for name, (before, after) in _link_paths(get_script_prefix()).items()
    }


# A job id that cannot occur in a URL pattern's own text: where reverse() puts the id.
_ID_MARK = "JOB-ID-MARK"


@functools.lru_cache(maxsize=16)
def _link_paths(script_prefix: str) -> dict[str, tuple[str, str]]:
    """Each link's path around the job id, reversed once per script prefix (reverse() walks
    the URL patterns on every call; the paths of three links per job add up in a listing)."""
    paths = {}
    for name, url_name in (
        ("status", "job-status"),
        ("output", "job-output"),
        ("cancel", "job-cancel"),
    ):
        before, _, after = reverse(url_name, kwargs={"job_id": _ID_MARK}).partition(_ID_MARK)
        paths[name] = (before, after)
    return paths


def _current_run(job: Job) -> dict[str, datetime]:
    """When the job's current run reached each status, from its history.

    An operator's retry (back to CREATED or STORED) starts a new run, so the times of an
    earlier, failed run are not reported as this one's. Missing or unreadable entries (jobs
    from before history was kept) give no time, never an error.
    """
    reached: dict[str, datetime] = {}
    for entry in job.history or []:
        try:
            status, at = entry["to"], datetime.fromisoformat(entry["at"])
        except (KeyError, TypeError, ValueError):
            continue
        if entry.get("from") == status:
            continue  # a requeue in the same status (services.job_requeue): reached earlier
        if status in _RUN_STARTS:
            reached = {}
        reached[status] = at
    return reached


def _iso(at: datetime | None) -> str | None:
    """DRF's DateTimeField format (ISO 8601 in UTC, "Z" for +00:00), without a Field per value.

    The API's time zone is UTC (settings.TIME_ZONE; no request activates another one).
    """
    if at is None:
        return None
    in_utc = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return in_utc.isoformat().removesuffix("+00:00") + "Z"


def _public_message(error: dict) -> str:
    """The error's message without internal hosts: a transport failure names only its kind."""
    message = error.get("message") or ""
    match = _TRANSPORT_ERROR.match(message)
    if error.get("status_code") is None and match and hasattr(requests.exceptions, match["name"]):
        return f"{match['name']} talking to {error.get('service')}"
    return message
