"""The OpenAPI description of the API (drf-spectacular), kept beside the code it describes.

The views carry `@extend_schema(**schema.SUBMIT)` and the like; `describe_errors` (a
postprocessing hook, settings.SPECTACULAR_SETTINGS) puts the table of every problem code into
the schema's description. Served at /api/schema/, shown at /api/docs/ (frontservice/urls.py).
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_serializer,
)
from rest_framework import serializers

from frontservice.problems import PROBLEM_CONTENT_TYPE, problem
from jobs.api import errors
from jobs.serializers import JobSerializer
from jobs.states import Status

PROBLEM = PROBLEM_CONTENT_TYPE


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """jobs.api.authentication.JWTAuthentication as the `bearerAuth` security scheme."""

    target_class = "jobs.api.authentication.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A JWT signed with the configured key and algorithm, carrying `exp`, `aud`, "
                "`sub` and the tenant claim. A job belongs to its (tenant, `sub`). From your "
                "identity provider; in development, `python manage.py issue_token`."
            ),
        }


class ProblemDetailsSerializer(serializers.Serializer):
    """An error: RFC 9457 problem details, sent as `application/problem+json`."""

    type = serializers.CharField(help_text="`urn:frontservice:problem:<code>`.")
    title = serializers.CharField(help_text="The HTTP status phrase, e.g. `Not Found`.")
    status = serializers.IntegerField(help_text="The HTTP status code of the response.")
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")
    code = serializers.CharField(
        help_text="Stable and machine-readable; the API description lists every code."
    )


class JobInputSerializer(serializers.Serializer):
    """A job's input sent as a multipart form."""

    input = serializers.FileField(help_text="The input; the part's Content-Type is kept.")
    callback_url = serializers.URLField(
        required=False,
        help_text="Like the `callback_url` query parameter (give one or the other, or both "
        "the same).",
    )


@extend_schema_serializer(many=False)  # the listing's answer is this object, not an array of it
class JobPageSerializer(serializers.Serializer):
    """One page of the caller's jobs, newest first."""

    results = JobSerializer(many=True, help_text="At most `limit` job documents.")
    next = serializers.URLField(
        allow_null=True,
        help_text="The next page (same filters and `limit`, a new `cursor`); null on the last.",
    )


# Problem codes that no ApiError class names: raised by DRF, by authentication or by Django's
# own error handlers (jobs/api/errors.py). ApiError subclasses describe themselves.
OTHER_PROBLEMS: dict[str, tuple[int, str]] = {
    "malformed_request": (400, "The multipart body cannot be parsed."),
    "not_authenticated": (401, "No `Authorization: Bearer <token>` header."),
    "invalid_header": (401, "The Authorization header is not `Bearer <token>`."),
    "invalid_token": (401, "The token is not valid (signature, algorithm, `aud`, `iss`, ...)."),
    "token_expired": (401, "The token has expired."),
    "missing_claims": (401, "The token lacks a non-empty `sub` or tenant claim."),
    "permission_denied": (403, "Not allowed (outside the job API)."),
    "csrf_failed": (403, "A form outside the job API (the admin) without a valid CSRF token."),
    "not_found": (404, "No such URL."),
    "method_not_allowed": (405, "The URL does not take this method; `Allow` lists those it does."),
    "not_acceptable": (406, "`Accept` names no media type the endpoint answers with."),
    "unsupported_media_type": (415, "Not answered today: every endpoint takes any media type."),
    "rate_limited": (429, "Too many requests; retry after `Retry-After` seconds."),
    "internal_error": (500, "An unexpected error; it is logged, and nothing of it is shown."),
}


def problem_catalogue() -> dict[str, tuple[int, str]]:
    """Every problem code: (HTTP status, when it is answered)."""
    catalogue = dict(OTHER_PROBLEMS)
    pending = list(errors.ApiError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        catalogue[cls.default_code] = (cls.status_code, str(cls.default_detail))
    return catalogue


def _problem(*codes: str, description: str = "") -> OpenApiResponse:
    """A problem+json response answered with these codes, one example for each."""
    catalogue = problem_catalogue()
    examples = []
    for code in codes:
        status_code, detail = catalogue[code]
        examples.append(
            OpenApiExample(code, value=problem(status_code=status_code, code=code, detail=detail))
        )
    listed = ", ".join(f"`{code}`" for code in codes)
    return OpenApiResponse(
        ProblemDetailsSerializer,
        description=f"{description} Codes: {listed}." if description else f"Codes: {listed}.",
        examples=examples,
    )


def _by_status(responses: dict) -> dict:
    """Responses in status order, as the docs list them. Later keys win: spread the common
    problems first, then what the operation answers differently."""
    return dict(sorted(responses.items()))


# Answered by every job endpoint.
_COMMON_PROBLEMS = {
    (400, PROBLEM): _problem(
        "bad_request", description="Refused as suspicious, e.g. a `Host` that is not served."
    ),
    (401, PROBLEM): _problem(
        "not_authenticated",
        "invalid_header",
        "invalid_token",
        "token_expired",
        "missing_claims",
        description="No valid bearer token; `WWW-Authenticate` says which.",
    ),
    (406, PROBLEM): _problem("not_acceptable", description="`Accept` excludes JSON."),
    (429, PROBLEM): _problem("rate_limited", description="Too many requests; see `Retry-After`."),
    (500, PROBLEM): _problem("internal_error", description="An unexpected error."),
    (503, PROBLEM): _problem(
        "database_unavailable", description="The database is down; retry later."
    ),
}

# Response headers of the error responses every job endpoint can give.
_COMMON_HEADERS = [
    OpenApiParameter(
        "WWW-Authenticate",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[401],
        description='`Bearer realm="frontservice"`, with `error="..."` when a token was sent.',
    ),
    OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[429, 503],
        description="Seconds to wait before retrying, when the service can tell.",
    ),
]

_JOB_ID = OpenApiParameter(
    "job_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The job's id. Another owner's job, or a malformed id, is 404 `job_not_found`.",
)

SUBMIT = {
    "operation_id": "job_submit",
    "tags": ["jobs"],
    "summary": "Submit a job",
    "description": (
        "The input is the raw request body (any media type; `Content-Length` or chunked) or "
        "a `multipart/form-data` file field named `input`. It is staged on disk and the job "
        "recorded; the answer comes at once, before the job runs. Poll `Location`, or give "
        "a `callback_url`: when the job is final, its document is POSTed there, signed with "
        "`X-FrontService-Timestamp` and `X-FrontService-Signature: v1=<hex HMAC-SHA256(secret, "
        'timestamp + "." + body)>`, with `X-FrontService-Event: job.finished` and '
        "`X-FrontService-Delivery: <uuid>` (the same on every retry of one event: dedupe on it). "
        "Retried with backoff on 5xx, 408, 429 and network errors; a 2xx is delivered."
    ),
    "request": {
        "*/*": OpenApiTypes.BINARY,
        "multipart/form-data": JobInputSerializer,
    },
    "parameters": [
        OpenApiParameter(
            "callback_url",
            {"type": "string", "format": "uri", "maxLength": 2048},
            OpenApiParameter.QUERY,
            description=(
                "Where to POST the job document, signed (`X-FrontService-*` headers), when the "
                "job is final. http or https, a host, no credentials; the host must resolve only "
                "to public addresses (not loopback, private, link-local, CGNAT, multicast, "
                "reserved or cloud metadata) unless the service's allow-list permits it. Checked "
                "before the body is read; refused: 400 `invalid_callback_url`. Part of what "
                "makes a request the same for `Idempotency-Key`."
            ),
        ),
        OpenApiParameter(
            "Idempotency-Key",
            {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
            OpenApiParameter.HEADER,
            description=(
                "Makes retrying safe: a repeat of the same request (same input bytes and "
                "Content-Type and `callback_url`) by the same owner gets the first answer, never "
                "a second job. "
                "1-255 visible ASCII characters, e.g. a UUID; remembered for 24 h by default."
            ),
        ),
        OpenApiParameter(
            "Location",
            OpenApiTypes.URI,
            OpenApiParameter.HEADER,
            response=[202],
            description="The job's status URL (`links.status`).",
        ),
        *_COMMON_HEADERS,
    ],
    "responses": _by_status(
        {
            **_COMMON_PROBLEMS,
            (202, "application/json"): OpenApiResponse(
                JobSerializer,
                description=(
                    "Accepted: the job, in `CREATED`. A repeat with the same `Idempotency-Key` "
                    "gets this same answer again."
                ),
                examples=[
                    OpenApiExample(
                        "accepted",
                        value={
                            "id": "5fae24ed-11a1-4c0d-a1d4-76da377c6978",
                            "status": "CREATED",
                            "created_at": "2026-01-05T10:00:00.000000Z",
                            "updated_at": "2026-01-05T10:00:00.000000Z",
                            "submitted_at": None,
                            "finished_at": None,
                            "attempts": 0,
                            "input_size": 11,
                            "content_type": "text/plain",
                            "callback_url": "https://hooks.example.com/frontservice",
                            "error": None,
                            "links": {
                                "status": "https://frontservice.example/api/v1/job/"
                                "5fae24ed-11a1-4c0d-a1d4-76da377c6978/status",
                                "output": "https://frontservice.example/api/v1/job/"
                                "5fae24ed-11a1-4c0d-a1d4-76da377c6978/output",
                                "cancel": "https://frontservice.example/api/v1/job/"
                                "5fae24ed-11a1-4c0d-a1d4-76da377c6978/cancel",
                            },
                        },
                    )
                ],
            ),
            (400, PROBLEM): _problem(
                "empty_input",
                "missing_input",
                "invalid_idempotency_key",
                "invalid_callback_url",
                "webhooks_not_configured",
                "incomplete_body",
                "invalid_content_length",
                "malformed_request",
                "bad_request",
            ),
            (408, PROBLEM): _problem(
                "upload_timeout",
                description="The body stopped coming for `UPLOAD_IDLE_TIMEOUT`; nothing was kept.",
            ),
            (409, PROBLEM): _problem(
                "idempotency_request_in_progress",
                description="The first request with this `Idempotency-Key` is not answered yet.",
            ),
            (411, PROBLEM): _problem(
                "length_required", description="Neither `Content-Length` nor a chunked body."
            ),
            (413, PROBLEM): _problem(
                "input_too_large",
                "request_too_large",
                description="A declared length over the limit is refused before the body is read.",
            ),
            (422, PROBLEM): _problem(
                "idempotency_key_reused",
                description="This `Idempotency-Key` was used for a different request.",
            ),
            (429, PROBLEM): _problem(
                "rate_limited",
                "too_many_active_jobs",
                "too_many_uploads",
                description="Too many requests, too many of your jobs still running, or too "
                "many of your uploads being read (decided before the body); see `Retry-After`.",
            ),
        }
    ),
}

LIST = {
    "operation_id": "job_list",
    "tags": ["jobs"],
    "summary": "List your jobs",
    "description": (
        "The caller's own jobs, newest first (`created_at`, then `id`, descending), a page at a "
        "time. Follow `next` until it is null: the cursor is a position, so jobs submitted "
        "meanwhile never make a job of a later page appear twice or not at all. Answered from "
        "the database (no downstream call): a `SUBMITTED` job shows its last known status."
    ),
    "parameters": [
        OpenApiParameter(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.LIST_MAX_LIMIT,
                "default": settings.LIST_DEFAULT_LIMIT,
            },
            OpenApiParameter.QUERY,
            description="Jobs per page: 1 to `LIST_MAX_LIMIT` (100 by default), default "
            "`LIST_DEFAULT_LIMIT` (20).",
        ),
        OpenApiParameter(
            "cursor",
            OpenApiTypes.STR,
            OpenApiParameter.QUERY,
            description="Opaque: the position after which the page starts, as put in `next`.",
        ),
        OpenApiParameter(
            "status",
            {"type": "array", "items": {"type": "string", "enum": list(Status.values)}},
            OpenApiParameter.QUERY,
            explode=True,
            description="Only jobs in these statuses; repeat it (`status=A&status=B`) or "
            "separate with commas (`status=A,B`).",
        ),
        OpenApiParameter(
            "created_after",
            OpenApiTypes.DATETIME,
            OpenApiParameter.QUERY,
            description="Only jobs created strictly after this ISO 8601 instant (UTC when it "
            "has no offset).",
        ),
        OpenApiParameter(
            "created_before",
            OpenApiTypes.DATETIME,
            OpenApiParameter.QUERY,
            description="Only jobs created strictly before this ISO 8601 instant.",
        ),
        *_COMMON_HEADERS,
    ],
    "responses": _by_status(
        {
            **_COMMON_PROBLEMS,
            (200, "application/json"): OpenApiResponse(JobPageSerializer, description="A page."),
            (400, PROBLEM): _problem(
                "invalid_limit",
                "invalid_cursor",
                "invalid_status_filter",
                "invalid_date_filter",
                "bad_request",
            ),
        }
    ),
}

STATUS = {
    "operation_id": "job_status",
    "tags": ["jobs"],
    "summary": "A job's status",
    "description": (
        "The job document. A `SUBMITTED` job is refreshed from JobService first (when it "
        "cannot be reached, the last known status is answered); other states are answered "
        "from the database. A job not final carries `Retry-After`: when polling again is "
        "useful. With `Prefer: wait=N` (RFC 7240) the answer comes as soon as the job is "
        "final, or after N seconds (at most `WAIT_MAX_SECONDS`, 30 by default) with the job as "
        "it is then; `Preference-Applied` says the wait was honoured."
    ),
    "parameters": [
        _JOB_ID,
        OpenApiParameter(
            "Prefer",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="`wait=N`: hold the answer up to N seconds (capped at "
            "`WAIT_MAX_SECONDS`) until the job is final. Other or malformed preferences are "
            "ignored, never an error.",
        ),
        OpenApiParameter(
            "Retry-After",
            OpenApiTypes.INT,
            OpenApiParameter.HEADER,
            response=[200],
            description="Only while the job is not final: seconds until polling again is "
            "useful (about a tenth of the job's age, 1 to `RETRY_AFTER_MAX_SECONDS`, and no "
            "later than a second after `next_attempt_at` while the job waits for one).",
        ),
        OpenApiParameter(
            "Preference-Applied",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            response=[200],
            description="`wait=<seconds held at most>` when a `Prefer: wait` was honoured; "
            "absent when it was not (too many requests held at once in this process).",
        ),
        *_COMMON_HEADERS,
    ],
    "responses": _by_status(
        {
            **_COMMON_PROBLEMS,
            (200, "application/json"): OpenApiResponse(JobSerializer, description="The job."),
            (404, PROBLEM): _problem("job_not_found", description="No such job of yours."),
        }
    ),
}

_OUTPUT_VALIDATORS = [
    OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 206, 304],
        description="The output's version (BlobService's strong entity tag): send it back in "
        "`If-None-Match` or `If-Range`.",
    ),
    OpenApiParameter(
        "Accept-Ranges",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 206, 304],
        description="`bytes`: a `Range` request is answered with that part.",
    ),
]

OUTPUT = {
    "operation_id": "job_output",
    "tags": ["jobs"],
    "summary": "A job's output",
    "description": (
        "The output of an `EXECUTION_COMPLETED` job, streamed from BlobService with its own "
        "`Content-Type` (that of the input) and `Content-Length`. `Range`, `If-Range` and "
        "`If-None-Match` are passed to BlobService and its answer relayed: one byte range "
        "answers 206 with `Content-Range`, a range starting past the end 416, a current "
        "`If-None-Match` 304; an interrupted download resumes with `Range: bytes=<received>-` "
        "and `If-Range: <ETag>`."
    ),
    "parameters": [
        _JOB_ID,
        OpenApiParameter(
            "Range",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="One byte range, e.g. `bytes=1048576-`, `bytes=0-1023`, `bytes=-500`. "
            "Several ranges or a malformed one are ignored (the whole output, 200).",
        ),
        OpenApiParameter(
            "If-Range",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="An `ETag`: the range only if the output is still that version, else "
            "the whole output (200).",
        ),
        OpenApiParameter(
            "If-None-Match",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="`ETag`s (or `*`): 304 without a body when one is the output's.",
        ),
        OpenApiParameter(
            "Content-Length",
            OpenApiTypes.INT,
            OpenApiParameter.HEADER,
            response=[200, 206],
            description="The size in bytes of the body: the whole output, or the range.",
        ),
        OpenApiParameter(
            "Content-Range",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            response=[206, 416],
            description="206: `bytes <first>-<last>/<size>`; 416: `bytes */<size>`.",
        ),
        *_OUTPUT_VALIDATORS,
        *_COMMON_HEADERS,
    ],
    "responses": _by_status(
        {
            **_COMMON_PROBLEMS,
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The output bytes, in the input's media type."
            ),
            (206, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The byte range asked for (`Content-Range` says which).",
            ),
            (304, "*/*"): OpenApiResponse(
                description="Not modified: `If-None-Match` named the output's `ETag`. No body."
            ),
            (404, PROBLEM): _problem(
                "job_not_found",
                "output_not_ready",
                "job_failed",
                "job_cancelled",
                description="No output: no such job of yours, not finished yet, failed, or "
                "cancelled.",
            ),
            (416, PROBLEM): _problem(
                "range_not_satisfiable",
                description="The range starts at or past the output's end; `Content-Range: "
                "bytes */<size>` gives its size.",
            ),
            (502, PROBLEM): _problem(
                "downstream_unavailable", description="BlobService did not deliver the output."
            ),
        }
    ),
}

CANCEL = {
    "operation_id": "job_cancel",
    "tags": ["jobs"],
    "summary": "Cancel a job",
    "description": (
        "A job not submitted to JobService yet (`CREATED`, `STORED`) is cancelled at once and "
        "never reaches JobService: 200, `CANCELLED`. A `SUBMITTED` job is cancelled in "
        "JobService: 200 `CANCELLED` once JobService confirms, 202 `CANCELLING` while it has "
        "not (it could not be reached; status requests and a periodic pass finish it). "
        "Repeating the cancel of a `CANCELLING` or `CANCELLED` job answers the same again and "
        "sends nothing downstream. A final job (including one that finished in JobService just "
        "before the cancel arrived) is 409 `job_not_cancellable`, its status in `detail`. "
        "Counts against the submit rate limit."
    ),
    "request": None,
    "parameters": [_JOB_ID, *_COMMON_HEADERS],
    "responses": _by_status(
        {
            **_COMMON_PROBLEMS,
            (200, "application/json"): OpenApiResponse(
                JobSerializer, description="Cancelled: the job, in `CANCELLED`."
            ),
            (202, "application/json"): OpenApiResponse(
                JobSerializer,
                description="Cancelling: the job, in `CANCELLING`, until JobService confirms; "
                "poll `links.status`.",
            ),
            (404, PROBLEM): _problem("job_not_found", description="No such job of yours."),
            (409, PROBLEM): _problem(
                "job_not_cancellable",
                description="The job is final (completed, failed, or an error state).",
            ),
        }
    ),
}


_INTRO = """\
Submit a job's input, poll its status, fetch its output. Every job endpoint needs
`Authorization: Bearer <JWT>` (use "Authorize"), and a job is only ever visible to its owner
(tenant, `sub`): another owner's job is 404 `job_not_found`.

Getting a token: in production, from your identity provider (the one FrontService trusts, with
this service as the audience). On a development setup (`make run`), `make token` prints one, or
`python manage.py issue_token --tenant acme --sub alice`; paste it into "Authorize".

Every error is `application/problem+json` (RFC 9457) with a stable `code`:

```json
{"type": "urn:frontservice:problem:job_not_found", "title": "Not Found", "status": 404,
 "detail": "No such job.", "code": "job_not_found"}
```
"""


def describe_errors(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: the introduction and the table of every problem code."""
    rows = sorted(problem_catalogue().items(), key=lambda item: (item[1][0], item[0]))
    table = "\n".join(f"| {status} | `{code}` | {when} |" for code, (status, when) in rows)
    result["info"]["description"] = f"{_INTRO}\n| status | code | when |\n|---|---|---|\n{table}\n"
    # A request line over gunicorn's limit (a huge query string, e.g. a `callback_url` far past
    # its own limit) never reaches Django: gunicorn answers 414 itself, with a small HTML page.
    # Documented as what it is, so clients (and the fuzzer) know that answer exists.
    for path in result.get("paths", {}).values():
        for operation in path.values():
            operation.setdefault("responses", {})["414"] = {
                "description": "The request line is longer than the server accepts (gunicorn's "
                "`limit_request_line`, 4094 bytes); answered by the WSGI server, not a problem "
                "document.",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
    return result
