"""webhooks/sender.py: one attempt, sent to the checked address, against a real local server."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks import sender
from webhooks.ssrf import Target


class Server:
    """Answers every POST with `status`, `body` and `headers`; records what it got."""

    def __init__(self, status: int = 200, body: bytes = b"", headers: dict | None = None):
        self.seen: list[tuple[str, dict, bytes]] = []
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server_self.seen.append((self.path, dict(self.headers), data))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve():
    servers = []

    def start(**kwargs) -> Server:
        servers.append(Server(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def target(port: int, *, scheme: str = "http", host: str = "hooks.example.com") -> Target:
    return Target(
        scheme=scheme, host=host, port=port, request_target="/in?x=1", addresses=("127.0.0.1",)
    )


def test_it_connects_to_the_checked_address_and_names_the_host(serve):
    server = serve(status=204)

    outcome = sender.post(
        target(server.port), address="127.0.0.1", body=b'{"a":1}', headers={"X-Test": "yes"}
    )

    assert (outcome.status_code, outcome.error, outcome.delivered) == (204, None, True)
    [(path, headers, body)] = server.seen
    # DNS was not asked again: the name only travels in Host.
    assert headers["Host"] == f"hooks.example.com:{server.port}"
    assert (path, body, headers["X-Test"]) == ("/in?x=1", b'{"a":1}', "yes")
    assert headers["Content-Type"] == "application/json"


def test_a_redirect_is_not_followed(serve):
    elsewhere = serve()
    server = serve(status=302, headers={"Location": f"http://127.0.0.1:{elsewhere.port}/"})

    outcome = sender.post(target(server.port), address="127.0.0.1", body=b"{}", headers={})

    assert outcome.status_code == 302
    assert not outcome.delivered and outcome.retryable
    assert elsewhere.seen == []


def test_only_a_snippet_of_an_error_answer_is_read(serve):
    server = serve(status=500, body=b"x" * 100_000)

    outcome = sender.post(target(server.port), address="127.0.0.1", body=b"{}", headers={})

    assert outcome.status_code == 500
    assert outcome.error == "HTTP 500: " + "x" * sender.RESPONSE_SNIPPET


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (410, False), (408, True), (429, True), (500, True)],
)
def test_only_4xx_other_than_408_and_429_are_final(serve, status, retryable):
    server = serve(status=status)

    outcome = sender.post(target(server.port), address="127.0.0.1", body=b"{}", headers={})

    assert outcome.retryable is retryable


def test_https_to_a_server_without_tls_is_a_failed_attempt(serve):
    server = serve()

    outcome = sender.post(
        target(server.port, scheme="https"), address="127.0.0.1", body=b"{}", headers={}
    )

    assert outcome.status_code is None
    assert outcome.error and outcome.retryable


def test_a_closed_port_is_a_failed_attempt():
    server = Server()
    port = server.port
    server.close()

    outcome = sender.post(target(port), address="127.0.0.1", body=b"{}", headers={})

    assert outcome.status_code is None
    assert "refused" in outcome.error.lower()
