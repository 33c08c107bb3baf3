"""Running the command-line client (frontservice_cli) as a user would: a separate process."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def cli_env(url: str, token: str | None) -> dict[str, str]:
    """The test process's environment without its own FRONTSERVICE_* settings, plus these."""
    env = {
        name: value for name, value in os.environ.items() if not name.startswith("FRONTSERVICE_")
    }
    env["FRONTSERVICE_URL"] = url
    if token is not None:
        env["FRONTSERVICE_TOKEN"] = token
    return env


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "frontservice_cli", *args]


def run_cli(
    url: str, token: str | None, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    """Run the CLI to its end; stdout and stderr are bytes (output may be binary)."""
    return subprocess.run(
        cli_argv(*args),
        env=cli_env(url, token),
        cwd=REPO,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The CLI's error: exactly one line on stderr, never a traceback."""
    text = result.stderr.decode()
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("frontservice: "), text
    return lines[0]
