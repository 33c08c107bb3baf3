"""Fixtures for the reference services: real processes on free ports, stopped in ``finally``.

To stay fast, each test module shares one BlobService and one JobService; the function-scoped
``blobservice`` and ``jobservice`` fixtures hand them out with faults cleared, stats reset and
(BlobService) no blobs. Tests that need a process of their own (restarts, memory, signals)
start one with ``launch``.

These tests need neither Django nor a database. Run them alone with::

    .venv/bin/python -m pytest -p no:django tests/refservices -q
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.refservices.helpers import Service, start_service

Launcher = Callable[..., Service]


@pytest.fixture(autouse=True)
def _database_access() -> Iterator[None]:
    # Shadows the root conftest's autouse fixture of the same name, which needs pytest-django:
    # these tests use no database, and must also run with `-p no:django`.
    yield


def _launcher(base_dir: Path) -> tuple[Launcher, list[Service]]:
    started: list[Service] = []

    def launch(module: str, *args: str, data_dir: Path | None = None) -> Service:
        service = start_service(module, data_dir or base_dir / f"{module}-{len(started)}", *args)
        started.append(service)
        return service

    return launch, started


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """``launch("blobservice" | "jobservice", *args, data_dir=...)``: a process of the test's own,
    stopped at teardown."""
    launcher, started = _launcher(tmp_path)
    try:
        yield launcher
    finally:
        for service in reversed(started):
            service.process.stop()


@pytest.fixture(scope="module")
def _shared_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    launcher, started = _launcher(tmp_path_factory.mktemp("shared"))
    try:
        blob = launcher("blobservice")
        job = launcher("jobservice", "--blobservice-url", blob.url, "--delay", "0")
        yield {"blob": blob, "job": job}
    finally:
        for service in reversed(started):
            service.process.stop()


def _fresh(service: Service) -> None:
    assert service.process.alive, f"{service.name} died:\n{service.process.log_tail()}"
    service.clear_faults()
    requests.post(f"{service.url}/_control/reset-stats", timeout=5).raise_for_status()


@pytest.fixture
def blobservice(_shared_services: dict[str, Service]) -> Iterator[Service]:
    """The module's BlobService, empty, with no faults and zeroed stats."""
    service = _shared_services["blob"]
    _fresh(service)
    # No blob lives in memory, so emptying the directories empties the service.
    for stored in [*(service.data_dir / "blobs").iterdir(), *(service.data_dir / "meta").iterdir()]:
        stored.unlink()
    yield service
    service.clear_faults()


@pytest.fixture
def jobservice(_shared_services: dict[str, Service], blobservice: Service) -> Iterator[Service]:
    """The module's JobService (execution delay 0), with no faults and zeroed stats.

    Its jobs persist between tests, so tests use job ids of their own (see ``job_id``).
    """
    service = _shared_services["job"]
    _fresh(service)
    yield service
    service.clear_faults()


@pytest.fixture
def launch_jobservice(launch: Launcher, blobservice: Service) -> Callable[..., Service]:
    """Start a JobService of the test's own, wired to ``blobservice``."""

    def _launch(*, delay: float = 0.0, data_dir: Path | None = None, workers: int = 4) -> Service:
        return launch(
            "jobservice",
            "--blobservice-url",
            blobservice.url,
            "--delay",
            str(delay),
            "--workers",
            str(workers),
            data_dir=data_dir,
        )

    return _launch


@pytest.fixture
def job_id(request: pytest.FixtureRequest) -> str:
    """A job id unique to the test (the shared JobService remembers every job)."""
    return "job-" + re.sub(r"[^A-Za-z0-9._-]", "_", request.node.name.removeprefix("test_"))[:120]
