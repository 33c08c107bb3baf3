"""End-to-end benchmark: FrontService against a direct BlobService PUT and GET, with peak memory.

    .venv/bin/python bench/e2e.py [--sizes 1MiB,512MiB] [--repeat 3] [--keep] [--timeout 900]

For every size a fresh stack (embedded MongoDB on SQLite, reference BlobService/JobService,
API under gunicorn gthread, django-q2 cluster) is started on free ports in a temp dir and warmed
up with one small job, and an input file is generated on disk. Then, `--repeat` times, the same
bytes go straight to BlobService (PUT, then GET: the baseline) and through the API (POST, wait,
GET /output), alternating, each step timed after the disk has settled (sync), every GET with the
same client and chunk size, every result checked by sha256 afterwards. The medians and the ratios
raw / FrontService are printed as a Markdown table and written to
bench/results/e2e-<timestamp>.json with every run. Every process is stopped by its PID at the
end, also on errors and Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import string
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.stack import Stack, descendants  # noqa: E402

MiB = 1024 * 1024
IO_CHUNK = MiB
POLL_INTERVAL = 0.2
# Terminal job statuses other than success: stop polling and fail the run.
FAILED_STATUSES = {"STORED_ERROR", "SUBMITTED_ERROR", "EXECUTION_ERROR"}
RSS_SAMPLE_INTERVAL = 0.25
# Process trees whose peak RSS is reported ("mongo" only in the JSON).
TREES = ("api", "worker", "blob", "job", "mongo")


# --- sizes and input files -------------------------------------------------------------------

_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1024,
    "mib": MiB,
    "gib": 1024 * MiB,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 1MiB, 512MiB, 4096)")
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size <= 0:
        raise argparse.ArgumentTypeError("sizes must be positive (the API refuses empty input)")
    return size


def format_size(size: int) -> str:
    for unit, factor in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


@dataclass
class InputFile:
    path: Path
    size: int
    sha256: str  # of the input, to verify the baseline round trip
    expected_output_sha256: str  # of the input with a-z uppercased, to verify the job


def generate_input(path: Path, size: int, seed: int = 1) -> InputFile:
    """Write `size` bytes of lowercase-heavy ASCII, hashing input and expected output as we go.

    A small pool of pseudo-random 1 MiB blocks is written in pseudo-random order: cheap to
    produce, never more than one block per write in memory, and not a single repeated pattern.
    """
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase * 4 + string.ascii_uppercase + string.digits + " .,\n"
    pool = [rng.choices(alphabet, k=IO_CHUNK) for _ in range(8)]
    blocks = [("".join(chars)).encode("ascii") for chars in pool]
    uppered = [block.upper() for block in blocks]  # bytes.upper() changes only a-z
    input_hash, output_hash = hashlib.sha256(), hashlib.sha256()
    remaining = size
    with path.open("wb") as out:
        while remaining:
            index = rng.randrange(len(blocks))
            n = min(remaining, IO_CHUNK)
            block, upper = blocks[index][:n], uppered[index][:n]
            out.write(block)
            input_hash.update(block)
            output_hash.update(upper)
            remaining -= n
    return InputFile(path, size, input_hash.hexdigest(), output_hash.hexdigest())


def download(response: requests.Response, path: Path) -> int:
    """Stream a response body into `path`, written over in place; return its size. The same for
    every GET measured (the API's output and the raw BlobService GET): one client, one chunk
    size, nothing but the copy to the file in the timed loop (the sha256 is checked afterwards,
    from the file).

    Every GET of a size writes over the same file instead of a new one: pages newly taken into
    the page cache can cost far more than the copy on a virtual machine (its first touch of
    memory the host took back), at random, which made either GET take seconds instead of a
    fraction of one."""
    size = 0
    with path.open("r+b" if path.exists() else "wb") as out:
        for chunk in response.iter_content(IO_CHUNK):
            out.write(chunk)
            size += len(chunk)
        out.truncate(size)
    return size


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(IO_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def settle_disk() -> None:
    """Write back the dirty pages of the previous step before the next one is timed, so that
    no step pays for the writeback of another (every step writes to the same disk)."""
    os.sync()


# --- peak memory -----------------------------------------------------------------------------


def vm_hwm_kib(pid: int) -> int | None:
    """The process's lifetime peak resident set (VmHWM), or None when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


# The process trees whose CPU time a GET costs is reported: the relay's and its source's.
GET_TREES = ("api", "blob")


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) used so far by each process tree in `roots` (exited threads
    included), and by this process, the client, as "client"."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, root in roots.items():
        ticks = 0
        for pid in descendants(root):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        used[name] = ticks / tick
    times = os.times()
    used["client"] = times.user + times.system
    return used


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 3) for name in before}


class PeakSampler:
    """Polls VmHWM of every process in the given trees, keeping the maximum per PID.

    VmHWM is already a lifetime peak, but a process that exits (e.g. a recycled queue worker)
    takes its value with it: sampling in the background keeps what it reached before exiting.
    """

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.peaks: dict[str, dict[int, int]] = {name: {} for name in roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> None:
        for name, root in self.roots.items():
            for pid in descendants(root):
                kib = vm_hwm_kib(pid)
                if kib is not None:
                    self.peaks[name][pid] = max(kib, self.peaks[name].get(pid, 0))

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL):
            self.sample()

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def report(self) -> dict[str, dict]:
        """Per tree: the max VmHWM in MiB and the per-PID values behind it."""
        return {
            name: {
                "peak_mib": round(max(pids.values(), default=0) / 1024, 1),
                "per_pid_mib": {str(pid): round(kib / 1024, 1) for pid, kib in pids.items()},
            }
            for name, pids in self.peaks.items()
        }


# --- the measurements ------------------------------------------------------------------------


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # straight to 127.0.0.1, whatever proxy the environment sets
    return session


def run_frontservice(stack: Stack, data: InputFile, out: Path, timeout: float) -> dict:
    """POST, poll until EXECUTION_COMPLETED, download and verify; the timings in seconds."""
    session = new_session()
    session.headers["Authorization"] = f"Bearer {stack.token}"
    api = stack.url("api")
    settle_disk()
    start = time.perf_counter()
    with data.path.open("rb") as body:  # an open file: requests streams it with Content-Length
        response = session.post(
            f"{api}/api/v1/job", data=body, headers={"Content-Type": "text/plain"}, timeout=timeout
        )
    posted = time.perf_counter()
    if response.status_code != 202:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:500]}")
    job_id = response.json()["id"]
    wait_completed(session, f"{api}/api/v1/job/{job_id}/status", posted + timeout)
    completed = time.perf_counter()
    settle_disk()
    roots = {name: stack.roots()[name] for name in GET_TREES}
    cpu_before = cpu_seconds(roots)
    got = time.perf_counter()
    with session.get(f"{api}/api/v1/job/{job_id}/output", stream=True, timeout=timeout) as output:
        output.raise_for_status()
        size = download(output, out)
    done = time.perf_counter()
    get_cpu = cpu_used(cpu_before, cpu_seconds(roots))
    sha256 = file_sha256(out)
    if size != data.size or sha256 != data.expected_output_sha256:
        raise RuntimeError(f"job {job_id}: wrong output ({size} bytes, sha256 {sha256})")
    return {
        "job_id": job_id,
        "post_s": posted - start,
        "wait_s": completed - posted,
        "download_s": done - got,
        "download_cpu_s": get_cpu,
        # POST + wait + GET, without the pause that lets the disk settle before the GET.
        "e2e_s": (completed - start) + (done - got),
    }


def wait_completed(session: requests.Session, url: str, deadline: float) -> None:
    while True:
        response = session.get(url, timeout=30)
        response.raise_for_status()
        status = response.json()["status"]
        if status == "EXECUTION_COMPLETED":
            return
        if status in FAILED_STATUSES:
            raise RuntimeError(f"{url}: the job ended in {status}: {response.text[:500]}")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{url}: still {status} after the timeout")
        time.sleep(POLL_INTERVAL)


def run_baseline(stack: Stack, data: InputFile, out: Path, timeout: float) -> dict:
    """The same bytes PUT straight to BlobService and read back, with the same client and chunk
    size as the FrontService run: the floor for the API."""
    session = new_session()
    url = f"{stack.url('blob')}/blobs/bench-{uuid.uuid4().hex}"
    settle_disk()
    start = time.perf_counter()
    with data.path.open("rb") as body:
        response = session.put(
            url, data=body, headers={"Content-Type": "text/plain"}, timeout=timeout
        )
    response.raise_for_status()
    stored = time.perf_counter()
    settle_disk()
    roots = {name: stack.roots()[name] for name in GET_TREES}
    cpu_before = cpu_seconds(roots)
    got = time.perf_counter()
    with session.get(url, stream=True, timeout=timeout) as blob:
        blob.raise_for_status()
        size = download(blob, out)
    done = time.perf_counter()
    get_cpu = cpu_used(cpu_before, cpu_seconds(roots))
    sha256 = file_sha256(out)
    session.delete(url, timeout=timeout)  # 1 GiB runs repeated: keep the disk use bounded
    if size != data.size or sha256 != data.sha256:
        raise RuntimeError(f"baseline: wrong bytes back ({size} bytes, sha256 {sha256})")
    return {
        "put_s": stored - start,
        "get_s": done - got,
        "get_cpu_s": get_cpu,
        "total_s": (stored - start) + (done - got),
    }


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def warm_up(stack: Stack, work: Path, timeout: float) -> None:
    """One small job through the whole stack before anything is timed: the first runs would
    otherwise pay for the processes still starting (the cluster's workers, first imports)."""
    small = generate_input(work / "warm-up.txt", 64 * 1024)
    run_frontservice(stack, small, work / "warm-up-download.bin", timeout)
    run_baseline(stack, small, work / "warm-up-download.bin", timeout)


def median_ratio(runs: list[dict], baseline_key: str, frontservice_key: str) -> float:
    return statistics.median(
        run["baseline"][baseline_key] / run["frontservice"][frontservice_key] for run in runs
    )


def bench_size(root: Path, size: int, timeout: float, repeat: int) -> dict:
    """One size on a fresh stack, so every peak RSS belongs to this size alone. The FrontService
    and baseline runs alternate, `repeat` times each, and the medians are reported."""
    work = root / f"size-{size}"
    work.mkdir()
    data = generate_input(work / "input.txt", size)
    stack = Stack(root=work)
    runs: list[dict] = []
    try:
        stack.start()
        warm_up(stack, work, timeout)
        # The file every timed GET writes over (download()), its pages in place beforehand.
        shutil.copyfile(data.path, work / "download.bin")
        # The baseline touches neither the API nor the workers: their peaks are FrontService's.
        with PeakSampler(stack.roots()) as sampler:
            for _ in range(repeat):
                baseline = run_baseline(stack, data, work / "download.bin", timeout)
                frontservice = run_frontservice(stack, data, work / "download.bin", timeout)
                runs.append({"frontservice": frontservice, "baseline": baseline})
    finally:
        stack.stop()
    fs = [run["frontservice"] for run in runs]
    base = [run["baseline"] for run in runs]
    median = {
        "post_s": median_of(fs, "post_s"),
        "wait_s": median_of(fs, "wait_s"),
        "download_s": median_of(fs, "download_s"),
        "e2e_s": median_of(fs, "e2e_s"),
        "put_s": median_of(base, "put_s"),
        "get_s": median_of(base, "get_s"),
        "baseline_s": median_of(base, "total_s"),
    }
    # CPU seconds each process tree spent on the GETs: what the relay adds to a raw GET.
    median["get_cpu_s"] = {
        name: statistics.median(run["get_cpu_s"][name] for run in base)
        for name in (*GET_TREES, "client")
    }
    median["download_cpu_s"] = {
        name: statistics.median(run["download_cpu_s"][name] for run in fs)
        for name in (*GET_TREES, "client")
    }
    # Ratios of throughput (>1: faster than the floor), each the median of the runs' own ratios.
    median["post_vs_put"] = median_ratio(runs, "put_s", "post_s")
    median["get_vs_get"] = median_ratio(runs, "get_s", "download_s")
    median["e2e_vs_baseline"] = median_ratio(runs, "total_s", "e2e_s")
    return {
        "size": size,
        "size_label": format_size(size),
        "median": median,
        "runs": runs,
        "rss": sampler.report(),
    }


# --- reporting -------------------------------------------------------------------------------


def machine() -> dict:
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    uname = platform.uname()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "mem_total_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "uname": f"{uname.system} {uname.release} {uname.machine}",
    }


def markdown(results: list[dict], host: dict, repeat: int) -> str:
    header = (
        "| size | POST s | raw PUT s | POST vs PUT | GET s | raw GET s | GET vs GET "
        "| e2e s | baseline PUT+GET s | e2e vs baseline | API peak RSS MiB "
        "| worker peak RSS MiB | BlobService peak RSS MiB | JobService peak RSS MiB |"
    )
    lines = [header, "|" + "---:|" * 14]
    for r in results:
        m, rss = r["median"], r["rss"]
        lines.append(
            f"| {r['size_label']} | {m['post_s']:.2f} | {m['put_s']:.2f} "
            f"| {m['post_vs_put']:.2f}x | {m['download_s']:.2f} | {m['get_s']:.2f} "
            f"| {m['get_vs_get']:.2f}x | {m['e2e_s']:.2f} | {m['baseline_s']:.2f} "
            f"| {m['e2e_vs_baseline']:.2f}x | {rss['api']['peak_mib']:.1f} "
            f"| {rss['worker']['peak_mib']:.1f} | {rss['blob']['peak_mib']:.1f} "
            f"| {rss['job']['peak_mib']:.1f} |"
        )
    lines.append("")
    for r in results:
        raw, relayed = r["median"]["get_cpu_s"], r["median"]["download_cpu_s"]
        lines.append(
            f"CPU s per GET at {r['size_label']} (medians): raw GET: BlobService "
            f"{raw['blob']:.2f}, client {raw['client']:.2f}; GET /output: BlobService "
            f"{relayed['blob']:.2f}, API {relayed['api']:.2f}, client {relayed['client']:.2f}."
        )
    lines.append("")
    lines.append(
        f"Medians of {repeat} interleaved runs (baseline, then FrontService); a ratio is raw "
        "time / FrontService time (1.00x: as fast as the floor)."
    )
    lines.append(
        f"Machine: nproc {host['nproc']}, {host['mem_total_gib']} GiB RAM, "
        f"Python {host['python']}, {host['uname']}"
    )
    return "\n".join(lines)


def write_json(results: list[dict], host: dict, argv: list[str]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPO / "bench" / "results" / f"e2e-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"created_at": stamp, "command": argv, "machine": host, "results": results}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1MiB,512MiB",
        type=lambda text: [parse_size(s) for s in text.split(",") if s.strip()],
        help="comma-separated input sizes (default 1MiB,512MiB)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="interleaved FrontService/baseline runs per size, medians reported (default 3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs)")
    parser.add_argument("--timeout", type=float, default=900, help="per job, seconds")
    return parser.parse_args(argv)


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process we started.
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    root = Path(tempfile.mkdtemp(prefix="frontservice-bench-"))
    host, results, keep = machine(), [], args.keep
    try:
        for size in args.sizes:
            print(f"benchmarking {format_size(size)} ...", file=sys.stderr, flush=True)
            results.append(bench_size(root, size, args.timeout, args.repeat))
            if not keep:  # 1 GiB leaves ~4 GiB of copies behind
                shutil.rmtree(root / f"size-{size}", ignore_errors=True)
    except KeyboardInterrupt:
        print("interrupted; every started process was stopped", file=sys.stderr)
        return 130
    except Exception:
        keep = True  # the process logs (<size dir>/logs/<name>-*.log) explain the failure
        raise
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(markdown(results, host, args.repeat))
    print(f"\nwritten {write_json(results, host, [sys.executable, *sys.argv])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
