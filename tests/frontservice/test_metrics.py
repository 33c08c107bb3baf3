"""/metrics (frontservice/metrics.py): Prometheus text with what the API and the workers of this
host did, in-process: the worker's tasks run in this process, which writes to the same
PROMETHEUS_MULTIPROC_DIR as it reads (tests/embedded_database.py). That another process's
counters show there too is tests/e2e/test_metrics.py.
"""

import re

from prometheus_client.parser import text_string_to_metric_families

from tests.support.inprocess import submit, wait_for_status

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)


def _scrape(api, **headers) -> dict[tuple, float]:
    response = api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_is_prometheus_text_without_a_token_by_default(api):
    api.get("/healthz")  # a request answered before the scrape, so it has one to count

    response = api.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"frontservice_http_requests", "frontservice_queue_depth"} <= names


def test_counters_move_when_a_job_goes_through(api, alice):
    before = _scrape(api)

    job_id = submit(api, alice, b"count me")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    after = _scrape(api)

    def moved(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("frontservice_http_requests_total", route="job-list", method="POST", status="202")
    assert moved("frontservice_http_requests_total", route="job-status", method="GET", status="200")
    assert moved(
        "frontservice_http_request_duration_seconds_count", route="job-list", method="POST"
    )
    assert moved("frontservice_jobs_created_total") >= 1
    # Made by the worker's tasks and by the status refresh.
    for source, target in [
        ("CREATED", "STORED"),
        ("STORED", "SUBMITTED"),
        ("SUBMITTED", "EXECUTION_COMPLETED"),
    ]:
        assert moved("frontservice_job_transitions_total", **{"from": source, "to": target}) >= 1
    for service in ("blobservice", "jobservice"):
        assert moved(
            "frontservice_downstream_requests_total", service=service, method="PUT", outcome="2xx"
        )
        assert moved(
            "frontservice_downstream_request_duration_seconds_count", service=service, method="PUT"
        )
    # Routes are named, never paths: no job id in any label.
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any(UUID.search(route) for route in routes)


def test_queue_gauges_are_computed_at_scrape_time_for_each_queue(api, settings):
    samples = _scrape(api)

    for queue in ("jobs", "webhooks"):
        assert _value(samples, "frontservice_queue_up", queue=queue) == 1
        assert ("frontservice_queue_depth", (("queue", queue),)) in samples
        if not settings.REDIS_URL:
            assert ("frontservice_queue_oldest_task_age_seconds", (("queue", queue),)) in samples
            assert ("frontservice_queue_in_flight", (("queue", queue),)) in samples


def test_metrics_token_is_required_when_set(api, settings):
    settings.METRICS_TOKEN = "scrape-token-123"

    missing = api.get("/metrics")
    wrong = api.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = api.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    health = api.get("/healthz")

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == "not_authenticated"
        assert refused["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert "frontservice_http_requests_total" in right.content.decode()
    assert health.status_code == 200  # the probes stay open


def test_requests_held_by_prefer_wait_are_measured_apart(api, alice):
    job_id = submit(api, alice, b"held")["id"]
    wait_for_status(api, alice, job_id, {"EXECUTION_COMPLETED"})
    labels = {"route": "job-status", "method": "GET"}
    before = _scrape(api)

    held = api.status_of(alice, job_id, headers={"Prefer": "wait=5"})
    plain = api.status_of(alice, job_id)
    after = _scrape(api)

    assert held["Preference-Applied"] == "wait=5" and not plain.has_header("Preference-Applied")

    def moved(name):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("frontservice_http_held_request_duration_seconds_count") == 1
    assert moved("frontservice_http_request_duration_seconds_count") == 1
