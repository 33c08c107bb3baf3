"""Stalled uploads: how long /healthz and another owner's submit take while one owner holds
uploads open that send a byte of their body and then nothing.

    python bench/stalled_uploads.py [--stalled 24] [--requests 20] [--idle-timeout 30]
    scripts/with_redis.sh python bench/stalled_uploads.py --broker redis

Starts a stack (bench/stack.py: the embedded database, 2 API processes x 8 threads, one
cluster), issues tokens to two owners of one tenant, then for each of `--rounds` rounds:

1. **baseline**: `--requests` times a `GET /healthz` then another owner's `POST /api/v1/job`
   (a small body), one after the other, each timed;
2. **stalled**: the staller opens `--stalled` raw connections, each sending a submit's headers
   (`Content-Length: 1000`) and one byte of the body, then nothing. Each API process reads 2 of
   them (UPLOADS_PER_OWNER) and refuses the rest at once (429 `too_many_uploads`); once those
   refusals are on the sockets (seen with select, not read), the same `--requests` pairs are
   timed while all the connections are open, neither read nor closed, as a hostile client
   leaves them. Then each stalled connection's answer (the 429s, and 408 `upload_timeout` after
   the idle timeout) is read, with its time since the connection opened. `--polite` reads every
   answer as soon as it comes instead.

Prints per phase the p50 and max of each kind of request and the stalled connections' answers,
and writes the same with every sample to `bench/results/stalled-<UTC timestamp>.json`
(git-ignored). Loopback only; at most `--stalled` + 1 connections at once; every request has a
timeout; every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("mongo", "redis"), default="mongo")
    parser.add_argument("--stalled", type=int, default=24)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="UPLOAD_IDLE_TIMEOUT")
    parser.add_argument(
        "--polite", action="store_true", help="the stalled clients read their answers at once"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    if args.broker == "redis" and not os.environ.get("REDIS_URL"):
        parser.error("--broker redis needs REDIS_URL (run it under scripts/with_redis.sh)")

    root = Path(tempfile.mkdtemp(prefix="fs-stalled-"))
    settings = {
        "UPLOAD_IDLE_TIMEOUT": f"{args.idle_timeout:g}",
        # Measured here is waiting, not the rate limits.
        "RATE_LIMIT_SUBMIT": "100000/min",
        "RATE_LIMIT_READ": "100000/min",
        "MAX_ACTIVE_JOBS_PER_OWNER": "100000",
    }
    if args.broker == "redis":
        settings["REDIS_URL"] = os.environ["REDIS_URL"]
    stack = Stack(root=root, settings=settings)
    try:
        stack.start()
        tokens = {
            who: stack.manage("issue_token", "--tenant", "bench", "--sub", who).strip()
            for who in ("staller", "other")
        }
        result = run(stack, tokens, args)
    finally:
        stack.stop()
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    result["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"stalled-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print(_table(result))
    print(f"samples: {out}")
    if args.keep:
        print(f"logs: {stack.log_dir}")


def run(stack: Stack, tokens: dict[str, str], args) -> dict:
    api = stack.url("api")
    other = {"Authorization": f"Bearer {tokens['other']}", "Content-Type": "text/plain"}
    for n in range(3):  # warm both processes' connections to the database and the broker
        _post(api, other, n)
    rounds = []
    for n in range(args.rounds):
        baseline = _measure(api, other, args.requests)
        stalled, answers = _with_stalled_uploads(
            api, tokens["staller"], args, lambda: _measure(api, other, args.requests)
        )
        rounds.append({"round": n, "baseline": baseline, "stalled": stalled, "answers": answers})
        # Every stalled connection has had its answer before the next round's baseline.
    return {
        "broker": args.broker,
        "stalled": args.stalled,
        "requests": args.requests,
        "idle_timeout": args.idle_timeout,
        "polite": args.polite,
        "rounds": rounds,
    }


def _post(api: str, headers: dict, n: int) -> float:
    began = time.monotonic()
    response = requests.post(f"{api}/api/v1/job", data=f"bench {n}", headers=headers, timeout=60)
    assert response.status_code == 202, response.text
    return time.monotonic() - began


def _measure(api: str, headers: dict, count: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"healthz": [], "post": []}
    for n in range(count):
        began = time.monotonic()
        response = requests.get(f"{api}/healthz", timeout=60)
        assert response.status_code == 200, response.text
        samples["healthz"].append(time.monotonic() - began)
        samples["post"].append(_post(api, headers, n))
    return samples


def _with_stalled_uploads(api: str, token: str, args, measure) -> tuple[dict, list]:
    host, port = api.removeprefix("http://").split(":")
    head = (
        "POST /api/v1/job HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    answers: list[dict] = []
    lock = threading.Lock()

    def stall(sock: socket.socket, opened: float) -> None:
        with sock:
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except OSError as exc:
                data = data or f"{type(exc).__name__}".encode()
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"
        with lock:
            answers.append({"status": status, "after": round(time.monotonic() - opened, 3)})

    opened = []
    for _ in range(args.stalled):
        sock = socket.create_connection((host, int(port)), timeout=args.idle_timeout + 30)
        sock.sendall(head + b"s")
        opened.append((sock, time.monotonic()))
    # Measured from the moment the refusals are sent (each API process reads 2 of one owner's
    # bodies and refuses the rest at once): seen on the sockets, not read.
    sockets = [sock for sock, _ in opened]
    deadline = time.monotonic() + args.idle_timeout + 30
    while len(select.select(sockets, [], [], 0.05)[0]) < args.stalled - 4:
        if time.monotonic() > deadline:
            break
    # A hostile client reads nothing and closes nothing while the others are measured (the
    # server's answers wait in its socket); --polite reads each answer as it comes instead.
    readers = [threading.Thread(target=stall, args=pair, daemon=True) for pair in opened]
    if args.polite:
        for reader in readers:
            reader.start()
    samples = measure()
    if not args.polite:
        for reader in readers:
            reader.start()
    for reader in readers:
        reader.join(args.idle_timeout + 60)
    return samples, answers


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f}"


def _table(result: dict) -> str:
    lines = [
        f"broker {result['broker']}, {result['stalled']} stalled uploads, "
        f"{result['requests']} requests per phase, UPLOAD_IDLE_TIMEOUT {result['idle_timeout']:g}",
        "| round | phase | /healthz p50 / max ms | other owner's POST p50 / max ms |",
        "|---|---|---|---|",
    ]
    for entry in result["rounds"]:
        for phase in ("baseline", "stalled"):
            samples = entry[phase]
            lines.append(
                f"| {entry['round']} | {phase} | {_summary(samples['healthz'])} "
                f"| {_summary(samples['post'])} |"
            )
    for phase in ("baseline", "stalled"):
        every = collections.defaultdict(list)
        for entry in result["rounds"]:
            for kind, values in entry[phase].items():
                every[kind] += values
        lines.append(
            f"| all | {phase} | {_summary(every['healthz'])} | {_summary(every['post'])} |"
        )
    answers = collections.Counter(
        answer["status"] for entry in result["rounds"] for answer in entry["answers"]
    )
    lines.append(f"stalled connections' answers: {dict(answers)}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
