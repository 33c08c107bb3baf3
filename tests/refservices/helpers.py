"""Talking to the reference services from tests: start them, poke their control plane."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import ManagedProcess, ProcessStartError, free_port

REPO = Path(__file__).resolve().parents[2]
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


@dataclass
class Service:
    """A running reference service and the few calls tests make to its control plane."""

    name: str
    url: str
    data_dir: Path
    process: ManagedProcess

    def stats(self) -> dict[str, Any]:
        return _ok(requests.get(f"{self.url}/_control/stats", timeout=5)).json()

    def faults(self, **settings: Any) -> dict[str, Any]:
        return _ok(requests.post(f"{self.url}/_control/faults", json=settings, timeout=5)).json()

    def clear_faults(self) -> None:
        _ok(requests.delete(f"{self.url}/_control/faults", timeout=5))

    def peak_rss_kib(self) -> int:
        """VmHWM: the highest resident set size the process has had so far."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1])


def _ok(response: requests.Response) -> requests.Response:
    assert response.ok, f"{response.status_code} {response.text}"
    return response


def start_service(module: str, data_dir: Path, *args: str) -> Service:
    """Start ``python -m refservices.<module>`` on a free port and wait until it answers."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            f"refservices.{module}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *args,
        ]
        try:
            process = ManagedProcess.start(
                argv,
                cwd=str(REPO),
                name=module,
                ready_url=f"{url}/_control/health",
                ready_timeout=15,
                log_dir=data_dir.parent,  # inside pytest's tmp_path, which pytest prunes
            )
        except ProcessStartError as error:
            # free_port() is a check-then-use race; another process may have taken the port.
            if "Address already in use" in str(error) and attempt < 2:
                continue
            raise
        return Service(module, url, data_dir, process)
    raise AssertionError("unreachable")


def put_blob(service: Service, blob_id: str, data: bytes, content_type: str | None = None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    _ok(requests.put(f"{service.url}/blobs/{blob_id}", data=data, headers=headers, timeout=10))


def get_blob(service: Service, blob_id: str) -> requests.Response:
    return requests.get(f"{service.url}/blobs/{blob_id}", timeout=10)


def wait_for_job(
    service: Service, job_id: str, statuses: set[str] = FINAL_STATUSES, timeout: float = 10
) -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses``; return the document."""
    deadline = time.monotonic() + timeout
    while True:
        document = _ok(requests.get(f"{service.url}/jobs/{job_id}", timeout=5)).json()
        if document["status"] in statuses:
            return document
        assert time.monotonic() < deadline, f"job stuck in {document['status']}: {document}"
        time.sleep(0.02)
