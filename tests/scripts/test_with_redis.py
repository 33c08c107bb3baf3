"""scripts/with_redis.sh, which gives `make test`'s Redis pass a Redis: the one configured, the
one on the default port, or one it starts for the run; without any, one line and exit 1."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.support.processes import free_port

SCRIPT = str(REPO / "scripts" / "with_redis.sh")


def _run(*args: str, path: str, closed_default_port: bool = True) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["PATH"] = path
    if closed_default_port:
        env["REDIS_DEFAULT_PORT"] = str(free_port())  # nothing listens there
    return subprocess.run(
        [SCRIPT, *args], env=env, capture_output=True, text=True, timeout=60, cwd=REPO
    )


def _path_without_redis(tmp_path: Path) -> str:
    """bash, python3 and the basics, but no redis-server."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("bash", "python3", "seq", "sleep", "env", "sh", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def test_without_redis_it_fails_at_once_with_one_line_saying_what_to_install(tmp_path):
    for args in (["--check"], ["true"]):
        done = _run(*args, path=_path_without_redis(tmp_path / args[0].strip("-")))

        assert done.returncode == 1
        assert done.stderr.count("\n") == 1
        assert "install redis-server" in done.stderr


def test_with_redis_server_installed_it_starts_one_for_the_run_and_stops_it(tmp_path):
    assert shutil.which("redis-server"), "the suite's machine has redis-server"
    probe = (
        "import os, socket; url = os.environ['REDIS_URL']; "
        "port = int(url.rsplit(':', 1)[1].split('/')[0]); "
        "s = socket.create_connection(('127.0.0.1', port), timeout=5); s.sendall(b'PING\\r\\n'); "
        "print(url, s.recv(16).decode().strip())"
    )

    done = _run("python3", "-c", probe, path=os.environ["PATH"])

    assert done.returncode == 0, done.stderr
    [probed] = [line for line in done.stdout.splitlines() if line.startswith("redis://")]
    url, answer = probed.split(maxsplit=1)
    assert answer == "+PONG"
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert "started redis-server" in done.stdout
    # Stopped with the run: nothing listens there any more.
    refused = subprocess.run(
        ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"],
        capture_output=True,
        timeout=10,
    )
    assert refused.returncode != 0
