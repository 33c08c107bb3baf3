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
  refusing a stalled upload frees its thread at once;
- a connection being closed lingers in the poller, not in the worker's main thread: gunicorn
  half-closes it and then waits up to 2 s for the client's end (so that bytes the client still
  sends do not reset the connection and lose its answer), and it does so in the one thread that
  accepts connections and dispatches them. A client that neither reads its answer nor closes
  (every refused or timed-out stalled upload) then stopped the whole process for 2 s each, and
  twenty of them left other owners' requests unaccepted for 10 to 20 s. Here the same
  half-close and the same bounds (LINGER_SECONDS, LINGER_MAX_BYTES) are waited out by the
  poller, which holds any number of such connections without blocking anything.

The concurrent uploads per process and per owner are capped before a body is read
(jobs/api/uploads.py), so stalled uploads can only ever hold a few of the threads.
"""

import contextlib
import logging
import selectors
import socket
import ssl
import struct
import time
from collections import deque
from functools import partial

from django.conf import settings
from gunicorn.workers import gthread

# Long enough for the rest of a small body already on its way, short enough that a client
# which sends nothing more cannot hold the thread.
DRAIN_SECONDS = 0.2
# How long a closing connection waits for the client's end, and how much it reads meanwhile:
# the bounds of gunicorn's own graceful close (gunicorn.util.close_graceful).
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 65536


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
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Connections half-closed by us, waiting in the poller for the client's end; in the
        # order of their deadlines (each gets the same LINGER_SECONDS from when it is added).
        self.lingering_conns = deque()

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

    def finish_request(self, conn, fs):
        # Runs in the main thread, the one that accepts and dispatches every connection.
        # gunicorn closes a finished connection here with a blocking linger of up to 2 s
        # (gunicorn.util.close_graceful), which a client that never closes turns into 2 s of a
        # process accepting nothing; that case lingers in the poller instead. The rest (a
        # connection kept alive, one deferred until its first bytes, a failed handler) is
        # gunicorn's.
        if fs.cancelled() or fs.exception() is not None or fs.result():
            super().finish_request(conn, fs)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # the answer is complete: FIN after it
            conn.sock.setblocking(False)
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self._on_lingering_readable, conn)
            )
        except (OSError, ValueError, KeyError):
            # Already gone (or not a socket any more): nothing to wait for.
            self.nr_conns -= 1
            conn.close()
            return
        conn.timeout = time.monotonic() + LINGER_SECONDS
        conn.lingered = 0
        self.lingering_conns.append(conn)

    def _on_lingering_readable(self, conn, _sock):
        try:
            data = conn.sock.recv(LINGER_MAX_BYTES)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except OSError:
            data = b""
        conn.lingered += len(data)
        if not data or conn.lingered >= LINGER_MAX_BYTES:
            self._end_linger(conn)

    def _end_linger(self, conn):
        self.lingering_conns.remove(conn)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        # Called by gunicorn's main loop at least once a second, also while stopping (which
        # waits for nr_conns to reach 0, so lingering connections end within LINGER_SECONDS).
        super().murder_pending()
        now = time.monotonic()
        while self.lingering_conns and self.lingering_conns[0].timeout <= now:
            self._end_linger(self.lingering_conns[0])
