"""GET and HEAD /output through real processes: a large output streamed from BlobService
through gunicorn, whole and by byte range, with its ETag, and its headers alone. The ranges' and
conditions' answers one by one are tested in-process (tests/jobs/api/test_output.py) and against
BlobService itself (tests/refservices/test_blobservice.py); the CLI resuming a cut download is in
test_cli.py."""

import hashlib
import os

import pytest
import requests

from jobs.models import Job
from tests.support.api import submit, wait_for_status

MIB = 1024 * 1024


def _get(stack, owner, job_id, **headers) -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/job/{job_id}/output",
        headers={**owner.headers, **headers},
        stream=True,
        timeout=60,
    )


def _sha256(response: requests.Response) -> str:
    digest = hashlib.sha256()
    with response:
        for chunk in response.iter_content(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_a_large_output_is_served_whole_and_by_range_with_its_etag(clean_downstream, alice):
    stack = clean_downstream
    data = os.urandom(20 * MIB)
    expected = data.upper()
    job_id = submit(stack, alice, data)["id"]
    wait_for_status(stack, alice, job_id, {"EXECUTION_COMPLETED"}, timeout=120)
    gets_before = stack.stats("blob")["by_id"][job_id].get("GET", 0)

    whole = _get(stack, alice, job_id)
    etag = whole.headers["ETag"]
    assert whole.status_code == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Length"] == str(len(data))
    assert _sha256(whole) == hashlib.sha256(expected).hexdigest()

    # The rest from 7 MiB + 5 on, as a client resuming a download asks for it.
    start = 7 * MIB + 5
    rest = _get(stack, alice, job_id, Range=f"bytes={start}-", **{"If-Range": etag})
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes {start}-{len(data) - 1}/{len(data)}"
    assert rest.headers["Content-Length"] == str(len(data) - start)
    assert rest.headers["ETag"] == etag
    assert _sha256(rest) == hashlib.sha256(expected[start:]).hexdigest()

    past_end = _get(stack, alice, job_id, Range=f"bytes={len(data)}-")
    assert past_end.status_code == 416
    assert past_end.headers["Content-Range"] == f"bytes */{len(data)}"
    assert past_end.json()["code"] == "range_not_satisfiable"

    cached = _get(stack, alice, job_id, **{"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""

    # HEAD: the whole answer's headers through gunicorn, no body, and the connection still
    # good for the next request (the declared length was not expected on the wire).
    with requests.Session() as session:
        url = f"{stack.api}/api/v1/job/{job_id}/output"
        head = session.head(url, headers=alice.headers, timeout=60)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Length"] == str(len(data))
        assert head.headers["ETag"] == etag
        after = session.get(url, headers={**alice.headers, "Range": "bytes=0-9"}, timeout=60)
        assert after.status_code == 206 and after.content == expected[:10]

    # Each answer came from BlobService (one GET each), and the job is untouched.
    assert stack.stats("blob")["by_id"][job_id]["GET"] == gets_before + 6
    assert Job.objects.get(pk=job_id).status == "EXECUTION_COMPLETED"
