"""manage.py: a command that cannot reach the database says so in two lines and exits 1
(frontservice/unreachable.py); in development, commands read the addresses `make run` chose from
its run file (frontservice/env.py, settings.RUN_FILE)."""

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.support.processes import free_port


def _manage(*args: str, var_dir, **env: str) -> subprocess.CompletedProcess:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MONGODB_URI", "DJANGO_SETTINGS_MODULE")
    }
    environ |= {
        "FRONTSERVICE_VAR_DIR": str(var_dir),
        "MONGODB_SERVER_SELECTION_TIMEOUT_MS": "300",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_without_its_database_says_which_in_two_lines(tmp_path):
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"

    done = _manage("jobs_summary", var_dir=tmp_path, MONGODB_URI=uri)

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(f"Cannot reach the database at {uri} (MONGODB_URI): ")
    assert "--traceback" in lines[1]


def test_traceback_shows_the_traceback(tmp_path):
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"

    done = _manage("jobs_summary", "--traceback", var_dir=tmp_path, MONGODB_URI=uri)

    assert done.returncode != 0
    assert "Traceback" in done.stderr and "ServerSelectionTimeoutError" in done.stderr


def test_the_uri_is_shown_without_its_password(tmp_path):
    uri = f"mongodb://ops:s3cret@127.0.0.1:{free_port()}/?directConnection=true"

    done = _manage("retry_jobs", "--dry-run", var_dir=tmp_path, MONGODB_URI=uri)

    assert done.returncode == 1
    assert "s3cret" not in done.stderr and "//***@127.0.0.1" in done.stderr


def test_commands_read_what_make_run_chose_from_its_run_file(tmp_path):
    port = free_port()
    (tmp_path / "run.env").write_text(
        f"# written by make run\nMONGODB_URI=mongodb://127.0.0.1:{port}/?directConnection=true\n"
    )

    done = _manage("jobs_summary", var_dir=tmp_path)

    assert f"127.0.0.1:{port}" in done.stderr.splitlines()[0]


def test_the_environment_wins_over_the_run_file(tmp_path):
    (tmp_path / "run.env").write_text("MONGODB_URI=mongodb://127.0.0.1:1/\n")
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"

    done = _manage("jobs_summary", var_dir=tmp_path, MONGODB_URI=uri)

    assert uri in done.stderr.splitlines()[0]
