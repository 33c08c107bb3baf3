"""A job's output as the API answers it: BlobService's answer relayed, byte ranges and
conditional requests included.

The client's Range, If-Range and If-None-Match go to BlobService as they are, and its answer
comes back as it is: 200 with the whole output, 206 with the part asked for and its
Content-Range, 304 when the client's copy is current, 416 (problem+json with
`Content-Range: bytes */size`) for a range past the end. The ETag is BlobService's: an output is
one blob, written once, so the blob's version is the output's. A BlobService that ignores these
headers answers 200 with the whole output and no ETag, which is still a correct answer to each
of them (RFC 9110 lets a server ignore Range and the If-* fields), so only what it says is
passed on: Accept-Ranges and ETag appear when it sends them.
"""

from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse

from frontservice.downstream import DownstreamError
from jobs.api import errors
from orchestration.clients import blob_service

# The request headers passed through, as open_blob's arguments.
_CONDITIONS = {
    "byte_range": "HTTP_RANGE",
    "if_range": "HTTP_IF_RANGE",
    "if_none_match": "HTTP_IF_NONE_MATCH",
}
# What the answer takes over from BlobService's, besides its body, type and length.
_RELAYED = {"etag": "ETag", "accept_ranges": "Accept-Ranges", "content_range": "Content-Range"}


def output_response(blob_id: str, meta: dict, *, head: bool = False) -> HttpResponse:
    """Open the blob with the request's (`meta`'s) Range and If-* headers; its answer as ours.

    For a HEAD (`head`), the same answer's status and headers, and the download is closed
    before a byte of it is read: the server would drop the body anyway, but only after Django
    had read all of it from BlobService."""
    conditions = {argument: meta.get(header) for argument, header in _CONDITIONS.items()}
    try:
        blob = blob_service.open_blob(blob_id, **conditions)
    except blob_service.RangeNotSatisfiable as exc:
        raise errors.RangeNotSatisfiable(size=exc.size) from exc
    except DownstreamError as exc:
        raise errors.DownstreamUnavailable("The output could not be fetched.") from exc
    if blob.status_code == 304:
        blob.close()
        response = HttpResponse(status=304)
        del response["Content-Type"]  # no body, so no type either
    else:
        if head:
            blob.close()
            response = HttpResponse(status=blob.status_code, content_type=blob.content_type)
        else:
            response = StreamingHttpResponse(
                _chunks(blob), status=blob.status_code, content_type=blob.content_type
            )
        if blob.content_length is not None:
            response["Content-Length"] = str(blob.content_length)
    for attribute, header in _RELAYED.items():
        value = getattr(blob, attribute)
        if value is not None:
            response[header] = value
    return response


def _chunks(blob: blob_service.BlobStream) -> Iterator[bytes]:
    # A generator: Django closes it when the response ends, which closes the upstream stream.
    try:
        yield from blob.iter_chunks()
    finally:
        blob.close()
