"""gunicorn's gthread worker with every read from a client bounded in time.

Why gthread and not an async worker class: the API's code is blocking (PyMongo, requests, files
on disk), and gevent or eventlet would have to monkey-patch all of it, the database driver
included; what an async worker buys, holding many slow clients cheaply, gthread gets here from
three bounds instead, so that no client can keep a thread for long:

- gunicorn's poller holds a connection until its first bytes arrive, without a thread;
- every blocking read from a client's socket (headers and body alike) fails after
  UPLOAD_IDLE_TIMEOUT seconds without a byte (SO_RCVTIMEO, set here on each connection), and
  the API answers a body that stalls with 408 and keeps nothing of it;
- a body the application did not read (a request refused before its body: 401, 413, 429) is
  drained for at most DRAIN_SECONDS before the connection is closed, not gunicorn's 5 s, so
  refusing a stalled upload frees its thread at once.

The concurrent uploads per process and per owner are capped before a body is read
(jobs/api/uploads.py), so stalled uploads can only ever hold a few of the threads.
"""

import contextlib
import logging
import socket
import struct
import time

from django.conf import settings
from gunicorn.workers import gthread

# Long enough for the rest of a small body already on its way, short enough that a client
# which sends nothing more cannot hold the thread.
DRAIN_SECONDS = 0.2


class _IdleReadFilter(logging.Filter):
    """gunicorn logs a read that hit SO_RCVTIMEO in a request's headers as "Socket error" with a
    traceback at ERROR; it is a slow client, not our error, and anyone could fill the logs with
    it. It becomes one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BlockingIOError | TimeoutError):
            record.msg = "closed a connection that sent nothing for UPLOAD_IDLE_TIMEOUT"
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class ThreadWorker(gthread.ThreadWorker):
    def init_process(self):
        self.log.error_log.addFilter(_IdleReadFilter())
        super().init_process()

    def enqueue_req(self, conn):
        # Kept by the socket across gunicorn's switches between blocking and non-blocking mode
        # (which reset Python's own socket timeout), so it bounds every blocking read.
        seconds = settings.UPLOAD_IDLE_TIMEOUT
        timeval = struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))
        # A client already gone fails here; the read that follows finds out.
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        super().enqueue_req(conn)

    def _keepalive_after(self, conn, keepalive):
        # gunicorn drains an unread body for up to 5 s before reusing the connection; here a
        # body not already on its way is not waited for (the connection closes instead).
        if not keepalive:
            return False
        return bool(conn.parser.finish_body(deadline=time.monotonic() + DRAIN_SECONDS))
