"""/metrics: Prometheus text with what the API and the workers of this host did.

The stack's API and worker share one PROMETHEUS_MULTIPROC_DIR (tests/embedded_database.py), so
the transitions and downstream calls a worker makes show on the API's /metrics.
"""

import re

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import submit, wait_for_status
from tests.support.private_api import private_api

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)


def _scrape(url: str, **headers) -> dict[tuple, float]:
    response = requests.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_is_prometheus_text_without_a_token_by_default(stack):
    response = requests.get(f"{stack.api}/metrics", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"frontservice_http_requests", "frontservice_queue_depth"} <= names


def test_counters_move_when_a_job_goes_through(stack, alice):
    before = _scrape(stack.api)

    job_id = submit(stack, alice, b"count me")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    after = _scrape(stack.api)

    def moved(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("frontservice_http_requests_total", route="job-list", method="POST", status="202")
    assert moved("frontservice_http_requests_total", route="job-status", method="GET", status="200")
    assert moved(
        "frontservice_http_request_duration_seconds_count", route="job-list", method="POST"
    )
    assert moved("frontservice_jobs_created_total") >= 1
    # Made by the worker process, shown by the API through the shared directory.
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


def test_queue_gauges_are_computed_at_scrape_time(stack):
    samples = _scrape(stack.api)

    assert _value(samples, "frontservice_queue_up") == 1
    assert _value(samples, "frontservice_queue_depth") >= 0
    if not stack.env.get("REDIS_URL"):
        assert ("frontservice_queue_oldest_task_age_seconds", ()) in samples
        assert ("frontservice_queue_in_flight", ()) in samples


def test_metrics_token_is_required_when_set(stack):
    with private_api(stack, METRICS_TOKEN="scrape-token-123") as api:
        missing = requests.get(f"{api}/metrics", timeout=10)
        wrong = requests.get(f"{api}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        right = requests.get(
            f"{api}/metrics", headers={"Authorization": "Bearer scrape-token-123"}, timeout=10
        )
        health = requests.get(f"{api}/healthz", timeout=10)

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == "not_authenticated"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert "frontservice_http_requests_total" in right.text
    assert health.status_code == 200  # the probes stay open
