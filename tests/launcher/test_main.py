"""launcher/__main__.py (`make run`) refusing to start: a port already taken. Starting the whole
service and stopping it with Ctrl-C is tests/e2e/test_launcher.py."""

import socket
import subprocess
import sys

from launcher.processes import free_port
from launcher.stack import REPO


def test_a_port_in_use_is_named_and_nothing_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = ["--mongo-port", str(free_port()), "--blob-port", str(free_port())]
        ports += ["--job-port", str(free_port()), "--api-port", str(port)]

        result = subprocess.run(
            [sys.executable, "-m", "launcher", *ports, "--data-dir", str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"port {port} is already in use (another 'make run'?); set *_PORT to choose others"
    )
    assert list(tmp_path.iterdir()) == []  # no run file, no log, no data
