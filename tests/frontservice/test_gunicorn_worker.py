"""frontservice/gunicorn_worker.py: what can be seen of the worker without a running server (it
runs under gunicorn in every end-to-end test; tests/e2e/test_hostile_clients.py sends it slow
and broken clients)."""

import logging
import os
import selectors
import socket
import sys
from concurrent import futures

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import TConn

from frontservice import gunicorn_worker
from frontservice.gunicorn_worker import ThreadWorker, _IdleReadFilter


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


@pytest.fixture
def worker():
    """The worker's main-thread state, without a server: its poller and connection count."""
    worker = ThreadWorker(0, os.getpid(), [], None, 30, Config(), None)
    worker.poller = selectors.DefaultSelector()
    yield worker
    worker.poller.close()
    worker.tmp.close()


@pytest.fixture
def closing(worker):
    """A connection whose request was answered and which is to be closed (the handler returned
    False), and its client's end."""
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    worker.nr_conns += 1
    finished = futures.Future()
    finished.set_result(False)
    yield TConn(worker.cfg, ours, "client", "server"), theirs, finished
    theirs.close()
    ours.close()


def test_a_closing_connection_whose_client_stays_waits_in_the_poller_half_closed(worker, closing):
    conn, client, finished = closing

    worker.finish_request(conn, finished)  # returns at once: nothing here waits for the client

    # The answer is complete (the client reads its end), the connection is still counted and
    # open, waiting for the client's end without a thread.
    assert client.recv(100) == b""
    assert conn in worker.lingering_conns
    assert worker.poller.get_key(conn.sock)
    assert worker.nr_conns == 1

    client.sendall(b"the rest of a body nobody reads")
    worker.wait_for_and_dispatch_events(timeout=1)
    assert conn in worker.lingering_conns  # read and dropped; still waiting

    client.close()
    worker.wait_for_and_dispatch_events(timeout=1)

    assert not worker.lingering_conns
    assert worker.nr_conns == 0
    assert conn.sock.fileno() == -1


def test_a_closing_connection_is_closed_at_its_linger_deadline(worker, closing, monkeypatch):
    conn, client, finished = closing
    monkeypatch.setattr(gunicorn_worker, "LINGER_SECONDS", 0)

    worker.finish_request(conn, finished)
    worker.murder_pending()  # what the main loop calls at least once a second

    assert not worker.lingering_conns
    assert worker.nr_conns == 0
    assert conn.sock.fileno() == -1
    assert client.recv(100) == b""
