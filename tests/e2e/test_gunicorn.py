"""What gunicorn itself decides, on raw connections to the API of the running stack.

A request is written exactly as given (no body, no Content-Length unless given), which an HTTP
client library would not send. The API's own rules for the same requests run in-process in
tests/jobs/api/test_errors.py.
"""

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from tests.support import problems


@dataclass
class RawAnswer:
    status_code: int
    headers: http.client.HTTPMessage
    text: str


def raw_request(stack, method: str, path: str, headers: dict[str, str]) -> RawAnswer:
    """One request exactly as written: no body, and no Content-Length unless given."""
    url = urlsplit(stack.api)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawAnswer(response.status, response.headers, response.read().decode())
    finally:
        connection.close()


def _secrets(stack) -> list[str]:
    return problems.leaks(stack.urls["blob"], stack.urls["job"])


def test_a_body_without_a_length_is_an_empty_body_under_gunicorn(stack, alice):
    # gunicorn ends every body for us (wsgi.input_terminated): there, a request with neither
    # Content-Length nor chunked encoding has an empty body (RFC 9112 section 6.3), not the 411
    # of a server that cannot tell the body's end.
    response = raw_request(stack, "POST", "/api/v1/job", alice.headers)

    problems.assert_problem(response, 400, "empty_input", secrets=_secrets(stack))


def test_a_declared_oversized_body_is_413_without_waiting_for_it(stack, alice):
    # The body is never sent: the answer comes from the declared length alone.
    headers = {**alice.headers, "Content-Length": str(settings.MAX_INPUT_BYTES + 1)}

    response = raw_request(stack, "POST", "/api/v1/job", headers)

    problems.assert_problem(response, 413, "input_too_large", secrets=_secrets(stack))
