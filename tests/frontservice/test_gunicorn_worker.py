"""frontservice/gunicorn_worker.py: what can be seen of the worker without a running server (it
runs under gunicorn in every end-to-end test; tests/e2e/test_hostile_clients.py sends it slow
and broken clients)."""

import logging
import sys

from frontservice.gunicorn_worker import _IdleReadFilter


def _record(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except type(error):
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "gunicorn.error",
        logging.ERROR,
        __file__,
        1,
        "Socket error processing request.",
        (),
        exc_info,
    )


def test_a_client_that_went_quiet_is_one_info_line_without_a_traceback():
    record = _record(BlockingIOError(11, "Resource temporarily unavailable"))

    assert _IdleReadFilter().filter(record)
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert "UPLOAD_IDLE_TIMEOUT" in record.getMessage()


def test_any_other_socket_error_is_logged_as_gunicorn_logs_it():
    record = _record(OSError(5, "Input/output error"))

    assert _IdleReadFilter().filter(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
