"""/metrics of the running stack: what every process of the host did, added up.

The stack's API (gunicorn, several processes) and its worker cluster share one
PROMETHEUS_MULTIPROC_DIR (tests/embedded_database.py), so the transitions and downstream calls a
worker process makes show on the API's /metrics. The metrics themselves are tested in-process
in tests/frontservice/test_metrics.py.
"""

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import submit, wait_for_status


def _scrape(url: str) -> dict[tuple, float]:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_api_shows_what_the_workers_did(stack, alice):
    before = _scrape(stack.api)

    job_id = submit(stack, alice, b"count me")["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"})
    after = _scrape(stack.api)

    def moved(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("frontservice_http_requests_total", route="job-list", method="POST", status="202")
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
