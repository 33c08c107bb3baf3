"""gunicorn settings for the API (read from the working directory; flags override them)."""

import os

# Threads, not processes, per connection: streamed uploads and downloads hold a thread for
# their whole duration. gunicorn's gthread worker with every client read bounded in time
# (frontservice/gunicorn_worker.py says why this and not an async worker class).
worker_class = "frontservice.gunicorn_worker.ThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A 2 GiB upload on a slow link takes a while; the worker must not be killed under it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "600"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# gunicorn's control socket lives at one fixed path per user, so two instances on one machine
# (make run beside the tests) would fight over it; nothing here uses it.
control_socket_disable = True


def child_exit(server, worker):
    # prometheus_client's multiprocess mode: forget the live gauges of an API process that exited
    # (its counters stay, summed into /metrics).
    from frontservice.metrics import mark_process_dead

    mark_process_dead(worker.pid)


# gunicorn's own lines (starting, booting a worker, a timeout) through the application's
# formatter (frontservice/request_log.py, LOG_FORMAT), so api.log is one JSON object per line.
# The access line is the application's own; gunicorn's access log stays off.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "app": {
            "()": "frontservice.request_log."
            + ("PlainFormatter" if os.environ.get("LOG_FORMAT") == "plain" else "JsonFormatter")
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "app",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}
