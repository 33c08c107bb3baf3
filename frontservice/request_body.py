"""Request bodies as the application reads them: a body cut off is an error, never a short body.

gunicorn hands the application a body that simply ends early when a client declares
`Content-Length: 100`, sends 40 bytes and goes away; read as it is, those 40 bytes would be
taken for the whole input. `strict_body` wraps every WSGI request so that such a body raises
`IncompleteBody` when its end comes too early, whichever code reads it (the raw upload, Django's
multipart parser). A chunked body cut off before its last chunk raises gunicorn's own
`NoMoreData`, and a client that stops sending raises the socket's timeout (the worker's
SO_RCVTIMEO, frontservice/gunicorn_worker.py). `client_read_failure` tells those apart from
every other error, for the API's error handler.

The wrapped stream also has `readinto(buffer)`, which never reads past the declared length: the
raw upload (jobs/api/uploads.py) reads a large body with it into one reusable buffer. Under
gunicorn it receives the body straight from the socket into that buffer (`_SocketBody`): gunicorn's
own reader hands out each piece as new bytes after copying it through two BytesIO buffers, and
those copies and allocations, not the network or the disk, were most of the time of a large upload.
"""

import io

from django.http import UnreadablePostError
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.http.unreader import SocketUnreader


class IncompleteBody(OSError):
    """The body ended before the length its request declared."""


class _SocketBody:
    """The rest of a gunicorn request body of known length, received from the client's socket
    straight into the caller's buffer.

    It keeps gunicorn's own accounting true, so that gunicorn still knows where the next request
    on the connection starts: bytes gunicorn already holds (read ahead with the headers) are
    taken through its reader first, `LengthReader.length` counts down what is received here,
    and a body that fails marks the connection as not reusable (`Body.failed`). `of` answers
    None wherever any of that does not hold (another server, a chunked body).
    """

    def __init__(self, body: Body, reader: LengthReader, sock):
        self._body = body
        self._reader = reader
        self._sock = sock

    @classmethod
    def of(cls, stream, sock) -> "_SocketBody | None":
        reader = getattr(stream, "reader", None)
        unreader = getattr(reader, "unreader", None)
        if (
            sock is None
            or not isinstance(stream, Body)
            or not isinstance(reader, LengthReader)
            or not isinstance(unreader, SocketUnreader)
            or unreader.sock is not sock
        ):
            return None
        return cls(stream, reader, sock)

    def readinto(self, view: memoryview) -> int:
        # What gunicorn holds already is taken from its buffers without a socket read: reading
        # through it would leave a read-ahead behind again, every time.
        held = _held(self._body.buf)
        if held:
            data = self._body.read(min(len(view), held))
        else:
            held = min(_held(self._reader.unreader.buf), self._reader.length)
            if held:
                data = self._reader.unreader.read(min(len(view), held))
                self._reader.length -= len(data)
        if held:
            view[: len(data)] = data
            return len(data)
        wanted = min(len(view), self._reader.length)
        if wanted == 0:
            return 0
        try:
            received = self._sock.recv_into(view, wanted)
        except BaseException:
            self._body.failed = True
            raise
        self._reader.length -= received
        if received == 0:
            self._body.failed = True  # the client went away: the next request will not come
        return received


def _held(buffer: io.BytesIO) -> int:
    with buffer.getbuffer() as view:
        return view.nbytes


class StrictInput:
    """A request's input stream that refuses to end before `length` bytes."""

    def __init__(self, stream, length: int, sock=None):
        self._stream = stream
        self._remaining = length
        self._socket_body = _SocketBody.of(stream, sock)

    def read(self, size: int = -1) -> bytes:
        return self._counted(self._stream.read(size), size)

    def readinto(self, buffer) -> int:
        """Read up to len(buffer) bytes of the body into `buffer`; 0 at its end."""
        view = memoryview(buffer).cast("B")[: max(self._remaining, 0)]
        if not view:
            return 0
        if self._socket_body is not None:
            received = self._socket_body.readinto(view)
        else:
            data = self._stream.read(len(view))
            received = len(data)
            view[:received] = data
        self._remaining -= received
        if received == 0:
            raise IncompleteBody(f"the body ended {self._remaining} bytes short")
        return received

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
            environ["wsgi.input"] = StrictInput(
                environ["wsgi.input"], length, sock=environ.get("gunicorn.socket")
            )
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
