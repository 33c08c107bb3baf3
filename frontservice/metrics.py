"""Prometheus metrics: what happens to requests, jobs and downstream calls, and the queue.

gunicorn runs several API processes and django-q2 forks its workers, so with
PROMETHEUS_MULTIPROC_DIR set every process writes its counters to files in that directory
(prometheus_client's multiprocess mode) and /metrics adds them up: on one host, the API shows
what the workers did too. The directory must be empty when the host's processes start (a tmpfs
per container in docker-compose.yml, a fresh directory in `make run` and the tests). Without
the variable each process has its own registry, which is enough for one process.

Labels are bounded: route names (not paths), job statuses, service names, status classes.
"""

import functools
import hmac
import logging
import os
import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from frontservice.broker import QUEUES
from frontservice.health import queue_stats
from frontservice.problems import json_problem_response
from frontservice.request_log import route_name

logger = logging.getLogger(__name__)

# Read by prometheus_client itself when it is imported, so the environment decides, not settings.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
# No `_created` sample per series: multiprocess mode has none either, so both modes read alike.
disable_created_metrics()

# Seconds; the API's answers are mostly milliseconds, uploads and downloads can take minutes.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

REQUESTS = Counter(
    "frontservice_http_requests",
    "HTTP requests answered, by route name, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "frontservice_http_request_duration_seconds",
    "Time to the response (for a streamed output: to its first byte), by route name and method.",
    ["route", "method"],
    buckets=_REQUEST_BUCKETS,
)
# A status request held by `Prefer: wait` lasts as long as the job takes (up to WAIT_MAX_SECONDS);
# counted in the latency histogram above it would hide the API's own latency behind the jobs'.
HELD_REQUEST_SECONDS = Histogram(
    "frontservice_http_held_request_duration_seconds",
    "Time to the response of a request held by `Prefer: wait` (Preference-Applied: wait=N), by "
    "route name and method; these are not in frontservice_http_request_duration_seconds.",
    ["route", "method"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
JOBS_CREATED = Counter("frontservice_jobs_created", "Jobs recorded (answered 202).")
TRANSITIONS = Counter(
    "frontservice_job_transitions",
    "Job status changes applied, by from and to status.",
    ["from", "to"],
)
DOWNSTREAM_CALLS = Counter(
    "frontservice_downstream_requests",
    "Calls to BlobService/JobService by service, method and outcome (2xx..5xx, transport_error).",
    ["service", "method", "outcome"],
)
DOWNSTREAM_SECONDS = Histogram(
    "frontservice_downstream_request_duration_seconds",
    "Time to a downstream response's headers (or to the transport error), by service and method.",
    ["service", "method"],
    buckets=_REQUEST_BUCKETS,
)


# --- Hooks called by the code that does the work -------------------------------------------


def job_created() -> None:
    JOBS_CREATED.inc()


def job_transitioned(from_status: str, to_status: str) -> None:
    TRANSITIONS.labels(str(from_status), str(to_status)).inc()


def timed_downstream(send):
    """Decorate orchestration.clients.http.send: latency and outcome of every downstream call."""

    @functools.wraps(send)
    def timed(service: str, method: str, url: str, **kwargs):
        started = time.perf_counter()
        outcome = "transport_error"
        try:
            response = send(service, method, url, **kwargs)
            outcome = f"{response.status_code // 100}xx"
            return response
        finally:
            DOWNSTREAM_SECONDS.labels(service, method).observe(time.perf_counter() - started)
            DOWNSTREAM_CALLS.labels(service, method, outcome).inc()

    return timed


class MetricsMiddleware:
    """Requests by route name and status, and their latency (held requests apart)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = route_name(request)
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        held = "wait=" in response.get("Preference-Applied", "")
        latency = HELD_REQUEST_SECONDS if held else REQUEST_SECONDS
        latency.labels(route, request.method).observe(time.perf_counter() - started)
        return response


# --- Scrape-time gauges --------------------------------------------------------------------


class QueueCollector:
    """Each queue's depth and oldest waiting task's age, asked of the broker at scrape time."""

    def collect(self):
        up = GaugeMetricFamily(
            "frontservice_queue_up",
            "1 if the broker answered this scrape's question about the queue within its timeout.",
            labels=["queue"],
        )
        depth = GaugeMetricFamily(
            "frontservice_queue_depth",
            "Tasks waiting in the broker queue, not taken by a worker.",
            labels=["queue"],
        )
        in_flight = GaugeMetricFamily(
            "frontservice_queue_in_flight",
            "Tasks a worker has taken and not acknowledged yet (MongoDB broker).",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "frontservice_queue_oldest_task_age_seconds",
            "Age of the oldest waiting task since its first enqueue (MongoDB broker; 0: none).",
            labels=["queue"],
        )
        for queue in QUEUES:
            try:
                stats = queue_stats(queue)
            except Exception as exc:  # the scrape still answers; the gauge says the broker did not
                logger.warning("queue metrics: broker unavailable: %s: %s", type(exc).__name__, exc)
                up.add_metric([queue], 0)
                continue
            up.add_metric([queue], 1)
            depth.add_metric([queue], stats["depth"])
            if "in_flight" in stats:
                in_flight.add_metric([queue], stats["in_flight"])
            if "oldest_age_seconds" in stats:
                oldest.add_metric([queue], stats["oldest_age_seconds"])
        yield up
        yield depth
        if in_flight.samples:
            yield in_flight
        if oldest.samples:
            yield oldest


class _ThisProcess:
    """The default registry's metrics, when there is no multiprocess directory to read."""

    def collect(self):
        return REGISTRY.collect()


def scrape() -> bytes:
    """The text exposition of every metric this host's processes recorded, plus the queue."""
    registry = CollectorRegistry()
    if MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        registry.register(_ThisProcess())
    registry.register(QueueCollector())
    return generate_latest(registry)


def metrics_view(request):
    """GET /metrics. Open unless METRICS_TOKEN is set; then `Authorization: Bearer <token>`."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            response = json_problem_response(
                401, "not_authenticated", "This endpoint needs the metrics token."
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    # The classic text format, which every Prometheus reads (our names are plain ASCII).
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: drop the live-gauge files of an API process that exited."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


def serve_worker_metrics() -> None:
    """`manage.py worker` on a host of its own: /metrics of its processes on WORKER_METRICS_PORT.

    Where the API runs beside the workers (sharing PROMETHEUS_MULTIPROC_DIR) the API's /metrics
    already shows them and this stays off. In a container of its own a worker has its own
    directory, so it serves it itself (no token: bind it to the internal network).
    """
    from django.conf import settings

    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    if MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        registry.register(_ThisProcess())
    start_http_server(port, registry=registry)
    logger.info("worker metrics on port %d", port)
