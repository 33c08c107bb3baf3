"""GET /api/schema/ and /api/docs/ (jobs/api/schema.py): the OpenAPI schema generated from the
code, and its docs page, served in-process."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import URLPattern
from drf_spectacular.validation import validate_schema

from frontservice.problems import problem
from jobs.api import errors, urls
from jobs.api.schema import problem_catalogue
from tests.support.inprocess import Api, body_of

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}
# Every status each operation can answer; each error one is a problem document.
EXPECTED_STATUSES = {
    ("/api/v1/job", "post"): {202, 400, 401, 406, 408, 409, 411, 413, 422, 429, 500, 503},
    ("/api/v1/job", "get"): {200, 400, 401, 406, 429, 500, 503},
    ("/api/v1/job/{job_id}/status", "get"): {200, 400, 401, 404, 406, 429, 500, 503},
    ("/api/v1/job/{job_id}/output", "get"): {
        200,
        206,
        304,
        400,
        401,
        404,
        406,
        416,
        429,
        500,
        502,
        503,
    },
    ("/api/v1/job/{job_id}/cancel", "post"): {200, 202, 400, 401, 404, 406, 409, 429, 500, 503},
}


@pytest.fixture(scope="module")
def schema() -> dict:
    # Served without a token and without any downstream service.
    response = Api().get("/api/schema/", data={"format": "json"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def _operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def _api_paths() -> set[tuple[str, str]]:
    """(path, method) of every route in jobs/urls.py, in OpenAPI's notation."""
    found = set()
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        for method in pattern.callback.actions:
            # DRF answers HEAD wherever there is a GET (and adds it to the actions once a view
            # has answered a request); the schema describes the GET.
            if method != "head":
                found.add((path, method))
    return found


def test_it_is_a_valid_openapi_3_document_served_without_a_token(schema):
    validate_schema(schema)  # against the OpenAPI 3.0 JSON Schema that drf-spectacular ships

    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "FrontService API"


def test_it_is_generated_without_warnings():
    # drf-spectacular warns where it has to guess (an untyped field, an unknown parameter): a
    # new endpoint or field that is not described fails here.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


def test_it_describes_every_route_of_the_api(schema):
    documented = {
        (path, method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }

    assert documented == _api_paths() == set(EXPECTED_STATUSES)


def test_every_operation_needs_a_bearer_jwt(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, method in EXPECTED_STATUSES:
        assert _operation(schema, path, method)["security"] == [{"bearerAuth": []}]


def test_every_error_response_is_a_problem_document(schema):
    for (path, method), statuses in EXPECTED_STATUSES.items():
        responses = _operation(schema, path, method)["responses"]
        assert {int(status) for status in responses} == statuses | {414}, (path, method)
        # The one answer FrontService does not write: gunicorn's own, to an overlong request line.
        assert responses.pop("414")["content"] == {"text/html": {"schema": {"type": "string"}}}
        for status, response in responses.items():
            if int(status) < 400:
                continue
            assert response["content"] == {
                "application/problem+json": {
                    "schema": PROBLEM_REF,
                    "examples": response["content"]["application/problem+json"]["examples"],
                }
            }, (path, method, status)
    problem = schema["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}


def _codes(schema: dict, path: str, method: str, status: int) -> set[str]:
    response = _operation(schema, path, method)["responses"][str(status)]
    examples = response["content"]["application/problem+json"]["examples"].values()
    return {example["value"]["code"] for example in examples}


def test_each_error_response_names_its_codes(schema):
    submit, output = ("/api/v1/job", "post"), ("/api/v1/job/{job_id}/output", "get")

    assert _codes(schema, *submit, 400) == {
        "empty_input",
        "missing_input",
        "invalid_idempotency_key",
        "invalid_callback_url",
        "webhooks_not_configured",
        "incomplete_body",
        "invalid_content_length",
        "malformed_request",
        "bad_request",
    }
    assert _codes(schema, *submit, 408) == {"upload_timeout"}
    assert _codes(schema, *submit, 413) == {"input_too_large", "request_too_large"}
    assert _codes(schema, *submit, 429) == {
        "rate_limited",
        "too_many_active_jobs",
        "too_many_uploads",
    }
    assert _codes(schema, *output, 404) == {
        "job_not_found",
        "output_not_ready",
        "job_failed",
        "job_cancelled",
    }
    cancel = ("/api/v1/job/{job_id}/cancel", "post")
    assert _codes(schema, *cancel, 404) == {"job_not_found"}
    assert _codes(schema, *cancel, 409) == {"job_not_cancellable"}
    assert _codes(schema, *output, 502) == {"downstream_unavailable"}
    assert _codes(schema, "/api/v1/job/{job_id}/status", "get", 404) == {"job_not_found"}
    assert _codes(schema, "/api/v1/job", "get", 400) == {
        "invalid_limit",
        "invalid_cursor",
        "invalid_status_filter",
        "invalid_date_filter",
        "bad_request",
    }
    for path, method in EXPECTED_STATUSES:
        assert "token_expired" in _codes(schema, path, method, 401)


def test_the_error_examples_are_what_the_api_sends(schema):
    for (path, method), statuses in EXPECTED_STATUSES.items():
        for status in statuses - {200, 202, 206, 304}:
            response = _operation(schema, path, method)["responses"][str(status)]
            for example in response["content"]["application/problem+json"]["examples"].values():
                value = example["value"]
                assert value == problem(
                    status_code=status, code=value["code"], detail=value["detail"]
                )


def test_the_description_lists_every_problem_code(schema):
    description = schema["info"]["description"]

    for code, (status, _) in problem_catalogue().items():
        assert f"| {status} | `{code}` |" in description
    # Every ApiError subclass is in the catalogue, including ones added later.
    pending = list(errors.ApiError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        assert f"`{cls.default_code}`" in description


def test_submit_takes_a_raw_body_or_a_multipart_input_field(schema):
    body = _operation(schema, "/api/v1/job", "post")["requestBody"]["content"]

    assert body["*/*"]["schema"] == {"type": "string", "format": "binary"}
    multipart = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    form = schema["components"]["schemas"][multipart]
    assert form["properties"]["input"] == {
        "type": "string",
        "format": "binary",
        "description": form["properties"]["input"]["description"],
    }
    assert form["required"] == ["input"]


def test_submit_describes_idempotency_key_and_location(schema):
    operation = _operation(schema, "/api/v1/job", "post")

    (key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header" and not key.get("required")
    assert key["schema"]["maxLength"] == 255 and key["schema"]["minLength"] == 1
    accepted = operation["responses"]["202"]
    assert accepted["headers"]["Location"]["schema"] == {"type": "string", "format": "uri"}
    assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}


def test_retry_after_and_www_authenticate_are_described(schema):
    for path, method in EXPECTED_STATUSES:
        responses = _operation(schema, path, method)["responses"]
        assert "Retry-After" in responses["429"]["headers"]
        assert "Retry-After" in responses["503"]["headers"]
        assert "WWW-Authenticate" in responses["401"]["headers"]


def test_output_is_binary_of_any_media_type(schema):
    operation = _operation(schema, "/api/v1/job/{job_id}/output", "get")

    assert operation["responses"]["200"]["content"] == {
        "*/*": {"schema": {"type": "string", "format": "binary"}}
    }
    (job_id,) = [p for p in operation["parameters"] if p["in"] == "path"]
    assert job_id["name"] == "job_id" and job_id["schema"] == {"type": "string", "format": "uuid"}


def test_output_describes_ranges_and_conditional_requests(schema):
    operation = _operation(schema, "/api/v1/job/{job_id}/output", "get")
    responses = operation["responses"]
    request_headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}

    assert {"Range", "If-Range", "If-None-Match"} <= request_headers
    assert responses["206"]["content"]["*/*"]["schema"]["format"] == "binary"
    assert {"ETag", "Accept-Ranges", "Content-Range", "Content-Length"} <= set(
        responses["206"]["headers"]
    )
    assert {"ETag", "Accept-Ranges"} <= set(responses["200"]["headers"])
    assert "ETag" in responses["304"]["headers"]
    assert "Content-Range" in responses["416"]["headers"]
    assert _codes(schema, "/api/v1/job/{job_id}/output", "get", 416) == {"range_not_satisfiable"}


def test_the_job_document_is_described_exactly(schema):
    job = schema["components"]["schemas"]["Job"]

    assert set(job["properties"]) == {
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
    }
    for name in ("submitted_at", "finished_at"):
        assert job["properties"][name]["format"] == "date-time"
        assert job["properties"][name]["nullable"] is True
    error = schema["components"]["schemas"]["JobError"]
    assert set(error["properties"]) == {"code", "service", "message", "status_code"}
    statuses = schema["components"]["schemas"]["JobStatus"]["enum"]
    assert "EXECUTION_COMPLETED" in statuses and "STORED_ERROR" in statuses
    assert "CANCELLING" in statuses and "CANCELLED" in statuses
    links = schema["components"]["schemas"]["JobLinks"]
    assert set(links["properties"]) == {"status", "output", "cancel"}
    assert job["properties"]["error"]["nullable"] is True
    assert job["properties"]["callback_url"]["nullable"] is True


def test_the_callback_url_is_described_as_query_parameter_and_form_field(schema):
    operation = _operation(schema, "/api/v1/job", "post")

    [parameter] = [p for p in operation["parameters"] if p["name"] == "callback_url"]
    assert parameter["in"] == "query"
    assert "invalid_callback_url" in parameter["description"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form_schema = schema["components"]["schemas"][form.rsplit("/", 1)[-1]]
    assert "callback_url" in form_schema["properties"]
    assert "X-FrontService-Signature" in operation["description"]


def test_it_is_served_as_yaml_by_default():
    response = Api().get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.decode().startswith("openapi: 3.")


def test_schema_and_docs_ignore_a_bad_token():
    # Public on purpose (README "API schema"): no authentication is even attempted.
    headers = {"Authorization": "Bearer not-a-token"}

    for path in ("/api/schema/", "/api/docs/"):
        assert Api().get(path, headers=headers).status_code == 200


def test_the_docs_page_and_its_assets_are_served_locally():
    # Through the whole middleware stack, WhiteNoise included, as gunicorn would run it.
    client = Api()
    page = client.get("/api/docs/")
    text = page.content.decode()

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert assets, text
    # No CDN: every asset is one of ours, and the page names no other host.
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', text))
    assert '"/api/schema/"' in text
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert body_of(response)
    bundle = next(asset for asset in assets if asset.endswith("swagger-ui-bundle.js"))
    response = client.get(bundle)
    assert "javascript" in response["Content-Type"]


def test_the_listing_is_a_page_of_job_documents(schema):
    operation = _operation(schema, "/api/v1/job", "get")

    page = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/JobPage"}
    properties = schema["components"]["schemas"]["JobPage"]["properties"]
    assert properties["results"]["items"] == {"$ref": "#/components/schemas/Job"}
    assert properties["next"]["nullable"] is True
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(parameters) == {"limit", "cursor", "status", "created_after", "created_before"}
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert "EXECUTION_COMPLETED" in parameters["status"]["schema"]["items"]["enum"]


def test_status_describes_retry_after_and_prefer_wait(schema):
    operation = _operation(schema, "/api/v1/job/{job_id}/status", "get")

    (prefer,) = [p for p in operation["parameters"] if p["name"] == "Prefer"]
    assert prefer["in"] == "header" and not prefer.get("required")
    assert {"Retry-After", "Preference-Applied"} <= set(operation["responses"]["200"]["headers"])


def test_the_docs_say_how_to_get_a_token(schema):
    description = schema["info"]["description"]

    assert "manage.py issue_token" in description
    assert "identity provider" in description
    assert "issue_token" in schema["components"]["securitySchemes"]["bearerAuth"]["description"]
