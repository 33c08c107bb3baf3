"""Request bodies as the application reads them: a body cut off is an error, never a short body.

gunicorn hands the application a body that simply ends early when a client declares
`Content-Length: 100`, sends 40 bytes and goes away; read as it is, those 40 bytes would be
taken for the whole input. `strict_body` wraps every WSGI request so that such a body raises
`IncompleteBody` when its end comes too early, whichever code reads it (the raw upload, Django's
multipart parser). A chunked body cut off before its last chunk raises gunicorn's own
`NoMoreData`, and a client that stops sending raises the socket's timeout (the worker's
SO_RCVTIMEO, frontservice/gunicorn_worker.py). `client_read_failure` tells those apart from
every other error, for the API's error handler.
"""

from django.http import UnreadablePostError
from gunicorn.http.errors import NoMoreData, ParseException


class IncompleteBody(OSError):
    """The body ended before the length its request declared."""


class _StrictInput:
    """A request's input stream that refuses to end before `length` bytes."""

    def __init__(self, stream, length: int):
        self._stream = stream
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        return self._counted(self._stream.read(size), size)

    def readline(self, size: int = -1) -> bytes:
        return self._counted(self._stream.readline(size), size)

    def _counted(self, data: bytes, size) -> bytes:
        self._remaining -= len(data)
        if not data and size != 0 and self._remaining > 0:
            raise IncompleteBody(f"the body ended {self._remaining} bytes short")
        return data

    def __iter__(self):
        while line := self.readline():
            yield line


def strict_body(app):
    """Wrap a WSGI application so that its requests' bodies cannot end short of their length."""

    def application(environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # the server refuses such a request before it gets here
        if length > 0 and "wsgi.input" in environ:
            environ["wsgi.input"] = _StrictInput(environ["wsgi.input"], length)
        return app(environ, start_response)

    return application


def client_read_failure(exc: BaseException) -> str | None:
    """`"timeout"` when the client stopped sending its body, `"incomplete"` when the body was cut
    off or malformed on the wire, None for any other error (which is ours, not the client's)."""
    if isinstance(exc, UnreadablePostError):
        # Django's request.read() wraps whatever the stream raised; every such error is the
        # client's body failing to arrive.
        return client_read_failure(exc.__cause__) or "incomplete"
    if isinstance(exc, (TimeoutError, BlockingIOError)):
        # A read that waited longer than the socket's idle timeout.
        return "timeout"
    if isinstance(exc, (IncompleteBody, NoMoreData, ParseException, ConnectionError)):
        return "incomplete"
    return None
