"""The reference BlobService, over real HTTP against a real process."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.refservices.helpers import Service, get_blob, put_blob

MIB = 1024 * 1024


def blob_url(service: Service, blob_id: str) -> str:
    return f"{service.url}/blobs/{blob_id}"


def raw_request(service: Service, request: bytes, *, close_after_send: bool = False) -> bytes:
    """Send bytes on a plain socket and return what the server answers (until it closes)."""
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        if close_after_send:
            return b""
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# --------------------------------------------------------------------------- the blob API


def test_it_stores_a_new_blob_with_201_and_describes_it(blobservice):
    response = requests.put(
        blob_url(blobservice, "report.txt"),
        data=b"hello",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )

    assert response.status_code == 201
    assert response.json() == {"id": "report.txt", "size": 5, "content_type": "text/plain"}


def test_it_streams_a_blob_back_with_its_content_type(blobservice):
    put_blob(blobservice, "doc", b"some bytes \x00\xff", "application/x-thing")

    response = get_blob(blobservice, "doc")

    assert response.status_code == 200
    assert response.content == b"some bytes \x00\xff"
    assert response.headers["Content-Type"] == "application/x-thing"
    assert response.headers["Content-Length"] == "13"


def test_a_blob_without_content_type_is_served_as_octet_stream(blobservice):
    response = requests.put(blob_url(blobservice, "raw"), data=iter([b"abc"]), timeout=5)
    assert response.json()["content_type"] == "application/octet-stream"

    assert get_blob(blobservice, "raw").headers["Content-Type"] == "application/octet-stream"


def test_head_answers_the_headers_of_get_without_a_body(blobservice):
    put_blob(blobservice, "h", b"12345678", "text/csv")

    response = requests.head(blob_url(blobservice, "h"), timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["Content-Length"] == "8"
    assert response.content == b""


def _get(service: Service, blob_id: str, **headers: str) -> requests.Response:
    return requests.get(blob_url(service, blob_id), headers=headers, timeout=10)


def test_a_blob_is_served_with_a_strong_etag_that_changes_when_it_is_overwritten(blobservice):
    put_blob(blobservice, "tagged", b"first")
    first = get_blob(blobservice, "tagged")
    again = requests.head(blob_url(blobservice, "tagged"), timeout=5)
    put_blob(blobservice, "tagged", b"other")
    second = get_blob(blobservice, "tagged")

    assert first.headers["ETag"].startswith('"') and first.headers["ETag"].endswith('"')
    assert first.headers["Accept-Ranges"] == "bytes"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert second.headers["ETag"] != first.headers["ETag"]


@pytest.mark.parametrize(
    ("spec", "content", "content_range"),
    [
        ("bytes=0-3", b"0123", "bytes 0-3/10"),
        ("bytes=4-", b"456789", "bytes 4-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),  # a last position past the end is clipped
        ("bytes=-50", b"0123456789", "bytes 0-9/10"),
        ("bytes=9-9", b"9", "bytes 9-9/10"),
    ],
)
def test_a_byte_range_answers_206_with_that_part(blobservice, spec, content, content_range):
    put_blob(blobservice, "digits", b"0123456789", "text/plain")

    response = _get(blobservice, "digits", Range=spec)

    assert response.status_code == 206
    assert response.content == content
    assert response.headers["Content-Range"] == content_range
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["ETag"] == get_blob(blobservice, "digits").headers["ETag"]


@pytest.mark.parametrize("spec", ["bytes=10-", "bytes=99-200", "bytes=-0"])
def test_a_range_past_the_end_answers_416_with_the_size(blobservice, spec):
    put_blob(blobservice, "digits", b"0123456789")

    response = _get(blobservice, "digits", Range=spec)

    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */10"
    assert response.json()["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("spec", ["bytes=0-1,4-5", "bytes=5-2", "items=0-1", "bytes=-", "x"])
def test_several_ranges_or_a_malformed_range_are_ignored(blobservice, spec):
    put_blob(blobservice, "digits", b"0123456789")

    response = _get(blobservice, "digits", Range=spec)

    assert response.status_code == 200
    assert response.content == b"0123456789"


def test_if_none_match_with_the_current_etag_answers_304_without_a_body(blobservice):
    put_blob(blobservice, "cached", b"0123456789")
    etag = get_blob(blobservice, "cached").headers["ETag"]

    for value in (etag, f'"other", W/{etag}', "*"):
        response = _get(blobservice, "cached", **{"If-None-Match": value})
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["ETag"] == etag
    assert _get(blobservice, "cached", **{"If-None-Match": '"other"'}).status_code == 200


def test_if_range_honours_the_range_only_for_the_current_etag(blobservice):
    put_blob(blobservice, "moving", b"0123456789")
    etag = get_blob(blobservice, "moving").headers["ETag"]

    same = _get(blobservice, "moving", Range="bytes=5-", **{"If-Range": etag})
    put_blob(blobservice, "moving", b"abcdefghij")
    changed = _get(blobservice, "moving", Range="bytes=5-", **{"If-Range": etag})
    dated = _get(
        blobservice, "moving", Range="bytes=5-", **{"If-Range": "Sat, 01 Jan 2000 00:00:00 GMT"}
    )

    assert (same.status_code, same.content) == (206, b"56789")
    assert (changed.status_code, changed.content) == (200, b"abcdefghij")
    assert (dated.status_code, dated.content) == (200, b"abcdefghij")


def test_cut_next_get_after_drops_one_download_after_that_many_bytes(blobservice):
    data = os.urandom(2 * MIB)
    put_blob(blobservice, "cut", data)
    blobservice.faults(cut_next_get_after=300_000)

    with requests.get(blob_url(blobservice, "cut"), stream=True, timeout=10) as cut:
        received = bytearray()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in cut.iter_content(65536):
                received += chunk
    whole = get_blob(blobservice, "cut")

    assert cut.headers["Content-Length"] == str(2 * MIB)
    # (The client library drops the last partial read when the connection breaks under it.)
    assert 0 < len(received) <= 300_000 and data.startswith(received)
    assert whole.content == data  # once only


def test_overwriting_a_blob_answers_200_and_replaces_content_and_type(blobservice):
    first = requests.put(
        blob_url(blobservice, "b"), data=b"old", timeout=5, headers={"Content-Type": "text/plain"}
    )
    second = requests.put(
        blob_url(blobservice, "b"), data=b"newer", timeout=5, headers={"Content-Type": "text/html"}
    )

    assert (first.status_code, second.status_code) == (201, 200)
    response = get_blob(blobservice, "b")
    assert response.content == b"newer"
    assert response.headers["Content-Type"] == "text/html"


def test_it_accepts_a_chunked_upload(blobservice):
    # A generator body makes requests send Transfer-Encoding: chunked.
    parts = [b"a" * 100_000, b"b" * 3, b"c" * 300_000]

    response = requests.put(blob_url(blobservice, "chunky"), data=iter(parts), timeout=5)

    assert response.status_code == 201
    assert response.json()["size"] == 400_003
    assert get_blob(blobservice, "chunky").content == b"".join(parts)


def test_it_decodes_chunk_extensions_and_trailers(blobservice):
    body = b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: nothing\r\n\r\n"
    answer = raw_request(
        blobservice,
        b"PUT /blobs/ext HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body,
    )

    assert answer.startswith(b"HTTP/1.1 201")
    assert get_blob(blobservice, "ext").content == b"abcde"


def test_malformed_chunked_encoding_is_a_400_and_stores_nothing(blobservice):
    answer = raw_request(
        blobservice,
        b"PUT /blobs/bad HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )

    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"invalid_chunked_encoding"' in answer
    assert get_blob(blobservice, "bad").status_code == 404


def test_a_put_without_length_or_chunking_is_refused_with_411(blobservice):
    answer = raw_request(blobservice, b"PUT /blobs/nolength HTTP/1.1\r\nHost: x\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 411")
    assert b'"code": "length_required"' in answer
    assert get_blob(blobservice, "nolength").status_code == 404


def test_an_empty_blob_is_a_valid_blob(blobservice):
    response = requests.put(blob_url(blobservice, "empty"), data=b"", timeout=5)

    assert response.status_code == 201
    assert get_blob(blobservice, "empty").content == b""


@pytest.mark.parametrize("bad_id", ["has%20space", "a%2Fb", "x" * 129, "caf%C3%A9", "%00"])
def test_invalid_blob_ids_are_refused_with_400(blobservice, bad_id):
    response = requests.put(f"{blobservice.url}/blobs/{bad_id}", data=b"x", timeout=5)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_blob_id"


@pytest.mark.parametrize("bad_id", [b".", b"..", b"%2E%2E", b""])
def test_path_like_blob_ids_are_refused_with_400(blobservice, bad_id):
    # Sent raw: HTTP clients would normalise these dot segments away before sending.
    answer = raw_request(
        blobservice,
        b"PUT /blobs/" + bad_id + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 1\r\nConnection: close\r\n\r\nx",
    )

    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"invalid_blob_id"' in answer
    assert sorted(p.name for p in blobservice.data_dir.rglob("*") if p.is_file()) == []


def test_the_longest_allowed_id_works(blobservice):
    blob_id = "A-z_0.9" + "x" * 121
    put_blob(blobservice, blob_id, b"ok")

    assert get_blob(blobservice, blob_id).content == b"ok"


def test_a_missing_blob_is_404_on_get_head_and_delete(blobservice):
    get = get_blob(blobservice, "nothing")
    head = requests.head(blob_url(blobservice, "nothing"), timeout=5)
    delete = requests.delete(blob_url(blobservice, "nothing"), timeout=5)

    assert (get.status_code, head.status_code, delete.status_code) == (404, 404, 404)
    assert get.json()["code"] == delete.json()["code"] == "blob_not_found"


def test_delete_removes_the_blob(blobservice):
    put_blob(blobservice, "gone", b"data")

    response = requests.delete(blob_url(blobservice, "gone"), timeout=5)

    assert response.status_code == 204
    assert get_blob(blobservice, "gone").status_code == 404


def test_unknown_routes_are_404_and_wrong_methods_405(blobservice):
    unknown = requests.get(f"{blobservice.url}/nowhere", timeout=5)
    nested = requests.get(f"{blobservice.url}/blobs/a/b", timeout=5)
    wrong = requests.post(blob_url(blobservice, "a"), data=b"x", timeout=5)

    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert nested.status_code == 404
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert "PUT" in wrong.headers["Allow"]


def test_errors_keep_the_connection_usable(blobservice):
    with requests.Session() as session:
        assert (
            session.post(blob_url(blobservice, "a"), data=b"x" * 1000, timeout=5).status_code == 405
        )
        assert session.put(blob_url(blobservice, "a"), data=b"fine", timeout=5).status_code == 201


# --------------------------------------------------------------------------- atomicity


def test_an_interrupted_upload_leaves_the_previous_blob_intact(blobservice):
    put_blob(blobservice, "keep", b"original")

    raw_request(
        blobservice,
        b"PUT /blobs/keep HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial",
        close_after_send=True,
    )

    tmp_dir = blobservice.data_dir / "tmp"
    deadline = time.monotonic() + 5
    while any(tmp_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(tmp_dir.iterdir()), "the partial upload was not cleaned up"
    assert get_blob(blobservice, "keep").content == b"original"


def test_a_read_in_progress_finishes_with_the_version_it_started_with(blobservice):
    old = os.urandom(8 * MIB)
    put_blob(blobservice, "moving", old)

    with requests.get(blob_url(blobservice, "moving"), stream=True, timeout=10) as reading:
        first = reading.raw.read(64 * 1024)
        put_blob(blobservice, "moving", b"replacement")
        rest = reading.raw.read()

    assert first + rest == old
    assert get_blob(blobservice, "moving").content == b"replacement"


def test_a_50_mib_blob_round_trips_without_the_server_holding_it_in_memory(launch, tmp_path):
    blobservice = launch("blobservice")  # a fresh process: its peak RSS is this test's alone
    put_blob(blobservice, "warmup", b"x" * MIB)  # threads, buffers and imports are warm now
    get_blob(blobservice, "warmup")
    source = tmp_path / "big.bin"
    block = os.urandom(MIB)
    with open(source, "wb") as out:
        for _ in range(50):
            out.write(block)
    expected = hashlib.sha256(block * 50).hexdigest()
    baseline = blobservice.peak_rss_kib()

    with open(source, "rb") as body:
        upload = requests.put(blob_url(blobservice, "big"), data=body, timeout=60)
    digest = hashlib.sha256()
    with requests.get(blob_url(blobservice, "big"), stream=True, timeout=60) as download:
        for chunk in download.iter_content(MIB):
            digest.update(chunk)

    assert upload.json()["size"] == 50 * MIB
    assert digest.hexdigest() == expected
    growth_mib = (blobservice.peak_rss_kib() - baseline) / 1024
    assert growth_mib < 20, f"peak RSS grew by {growth_mib:.1f} MiB"


def test_blobs_survive_a_restart(launch, tmp_path):
    data_dir = tmp_path / "persistent"
    first = launch("blobservice", data_dir=data_dir)
    put_blob(first, "durable", b"still here", "text/plain")
    assert first.process.stop() == 0

    second = launch("blobservice", data_dir=data_dir)

    response = get_blob(second, "durable")
    assert response.content == b"still here"
    assert response.headers["Content-Type"] == "text/plain"


def test_sigterm_stops_it_quickly_even_with_an_open_connection(launch):
    blobservice = launch("blobservice")
    with requests.Session() as session:
        session.get(f"{blobservice.url}/_control/health", timeout=5)  # keep-alive stays open
        started = time.monotonic()
        assert blobservice.process.stop(timeout=5) == 0
    assert time.monotonic() - started < 3
    assert "listening on http://127.0.0.1:" in Path(blobservice.process.log_path).read_text()


# --------------------------------------------------------------------------- control plane


def test_health_answers_ok(blobservice):
    response = requests.get(f"{blobservice.url}/_control/health", timeout=5)

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_stats_count_requests_by_route_and_by_id(blobservice):
    put_blob(blobservice, "a", b"1")
    put_blob(blobservice, "a", b"2")
    get_blob(blobservice, "a")
    requests.head(blob_url(blobservice, "b"), timeout=5)
    requests.delete(blob_url(blobservice, "a"), timeout=5)

    stats = blobservice.stats()

    assert stats["requests"] == {
        "PUT /blobs": 2,
        "GET /blobs": 1,
        "HEAD /blobs": 1,
        "DELETE /blobs": 1,
    }
    assert stats["by_id"] == {"a": {"PUT": 2, "GET": 1, "DELETE": 1}, "b": {"HEAD": 1}}
    assert stats["faults_injected"] == 0


def test_reset_stats_starts_counting_from_zero(blobservice):
    put_blob(blobservice, "a", b"1")

    reset = requests.post(f"{blobservice.url}/_control/reset-stats", timeout=5)

    assert reset.status_code == 200
    assert blobservice.stats() == {"requests": {}, "by_id": {}, "faults_injected": 0}


def test_fail_next_answers_the_injected_status_without_acting(blobservice):
    blobservice.faults(fail_next=2, status=500)

    answers = [requests.put(blob_url(blobservice, "f"), data=b"x", timeout=5) for _ in range(3)]

    assert [a.status_code for a in answers] == [500, 500, 201]
    assert answers[0].json()["code"] == "injected_fault"
    assert "Retry-After" not in answers[0].headers
    stats = blobservice.stats()
    assert stats["faults_injected"] == 2
    assert stats["by_id"]["f"]["PUT"] == 3  # faulted requests were received, so they count


def test_an_injected_fault_does_not_store_the_body(blobservice):
    put_blob(blobservice, "f", b"before")
    blobservice.faults(fail_next=1, methods=["PUT"])

    response = requests.put(blob_url(blobservice, "f"), data=b"after", timeout=5)

    assert response.status_code == 500
    assert get_blob(blobservice, "f").content == b"before"


def test_a_429_fault_carries_retry_after(blobservice):
    blobservice.faults(fail_next=1, status=429, retry_after=7)

    response = get_blob(blobservice, "any")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_faults_only_hit_the_listed_methods(blobservice):
    put_blob(blobservice, "m", b"data")
    blobservice.faults(fail_next=1, status=503, methods=["delete"])

    assert get_blob(blobservice, "m").status_code == 200
    assert requests.delete(blob_url(blobservice, "m"), timeout=5).status_code == 503
    assert requests.delete(blob_url(blobservice, "m"), timeout=5).status_code == 204


def test_a_faulted_large_upload_is_drained_so_the_connection_stays_usable(blobservice):
    blobservice.faults(fail_next=1, methods=["PUT"])
    with requests.Session() as session:
        faulted = session.put(blob_url(blobservice, "big"), data=b"x" * (3 * MIB), timeout=10)
        after = session.put(blob_url(blobservice, "big"), data=b"y", timeout=10)

    assert (faulted.status_code, after.status_code) == (500, 201)


def test_fail_rate_with_a_seed_is_reproducible(blobservice):
    def outcomes() -> list[int]:
        blobservice.faults(fail_rate=0.5, seed=42, status=502)
        return [get_blob(blobservice, "nothing").status_code for _ in range(20)]

    first, second = outcomes(), outcomes()

    assert first == second
    assert set(first) == {404, 502}


def test_delay_slows_api_requests_but_not_the_control_plane(blobservice):
    blobservice.faults(delay=1.0)

    with pytest.raises(requests.ReadTimeout):
        requests.get(blob_url(blobservice, "slow"), timeout=0.3)
    started = time.monotonic()
    requests.get(f"{blobservice.url}/_control/health", timeout=5)
    assert time.monotonic() - started < 0.5


def test_faults_can_be_read_and_cleared(blobservice):
    blobservice.faults(fail_next=3, status=429, retry_after=2, methods=["get", "PUT"])

    shown = requests.get(f"{blobservice.url}/_control/faults", timeout=5).json()
    assert shown | {"methods": sorted(shown["methods"])} == {
        "fail_next": 3,
        "status": 429,
        "retry_after": 2,
        "fail_rate": 0.0,
        "delay": 0.0,
        "hold": 0.0,
        "methods": ["GET", "PUT"],
        "seed": None,
        "cut_next_get_after": 0.0,
    }

    blobservice.clear_faults()
    assert get_blob(blobservice, "x").status_code == 404
    assert requests.get(f"{blobservice.url}/_control/faults", timeout=5).json()["fail_next"] == 0


def test_a_held_request_goes_on_when_the_faults_are_cleared(blobservice):
    blobservice.faults(hold=60, methods=["PUT"])
    held = ThreadPoolExecutor(1).submit(put_blob, blobservice, "held", b"held bytes")
    time.sleep(0.3)
    assert not held.done()

    blobservice.clear_faults()

    held.result(timeout=10)  # put_blob raises unless the PUT succeeded
    assert get_blob(blobservice, "held").content == b"held bytes"


@pytest.mark.parametrize(
    "settings",
    [
        {"fail_nxt": 1},
        {"status": 200},
        {"fail_rate": 2},
        {"methods": "GET"},
        {"delay": -1},
        {"hold": -1},
    ],
)
def test_invalid_fault_settings_are_refused(blobservice, settings):
    response = requests.post(f"{blobservice.url}/_control/faults", json=settings, timeout=5)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
