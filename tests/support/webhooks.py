"""A webhook receiver on loopback for tests, and what tests check of what it got."""

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jobs.models import Job, WebhookStatus
from webhooks import signing


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver: records every request, answers the scripted statuses, then 200."""

    def __init__(self, answers: list[int] | None = None, default: int = 200):
        self.answers = list(answers or [])
        self.default = default
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                payload = json.dumps({"answered": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hooks/frontservice") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class SilentReceiver:
    """A receiver that accepts every connection and never answers: each delivery to it waits
    out the sender's read timeout. Connections are held open until stop()."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def url(self, path: str = "/hooks/silent") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def accepted(self) -> int:
        return len(self.held)

    def start(self) -> "SilentReceiver":
        self.thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed by stop()
                return
            self.held.append(connection)

    def stop(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()
        self.thread.join(timeout=5)


def wait_for_webhook(job_id: str, timeout: float = 30) -> Job:
    """Wait (on the database) until the job's webhook is delivered or given up."""
    deadline = time.monotonic() + timeout
    job = Job.objects.get(pk=job_id)
    while job.webhook_status not in (WebhookStatus.DELIVERED, WebhookStatus.FAILED):
        assert time.monotonic() < deadline, f"webhook of {job_id} still {job.webhook_status!r}"
        time.sleep(0.05)
        job.refresh_from_db()
    return job


def verifies(received: Received, secret: str) -> bool:
    return signing.verify(secret, headers=received.headers, body=received.body)
