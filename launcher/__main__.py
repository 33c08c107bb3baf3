"""`make run`: every process of FrontService on this machine, with the embedded MongoDB.

    python -m launcher [--api-port 8000] [--mongo-port 27018] [--blob-port 8101]
                       [--job-port 8102] [--data-dir var]

Starts the stack of launcher/stack.py in order, each process once the one before is ready, with
its log in `<data-dir>/log/<name>.log`; writes the addresses it chose to `<data-dir>/run.env` for
`manage.py` commands; prints how to use it; then waits. Ctrl-C (or SIGTERM) stops every process
by the PID started here, as does any process exiting by itself.
"""

import argparse
import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

from launcher.processes import ProcessStartError
from launcher.stack import PROCESSES, PYTHON, REPO, Stack

# How often the running stack is looked at for a process that exited by itself.
WATCH_INTERVAL = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m launcher", description=__doc__.split("\n")[0])
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--mongo-port", type=int, default=27018)
    parser.add_argument("--blob-port", type=int, default=8101)
    parser.add_argument("--job-port", type=int, default=8102)
    parser.add_argument("--data-dir", type=Path, default=Path("var"))
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    ports = {"mongo": args.mongo_port, "blob": args.blob_port, "job": args.job_port}
    ports["api"] = args.api_port
    busy = [port for port in ports.values() if _in_use(port)]
    if busy:
        print(
            f"port {busy[0]} is already in use (another 'make run'?); set *_PORT to choose others",
            file=sys.stderr,
        )
        return 1
    # Absolute, as the processes start in the repository whatever the current directory.
    data_dir = args.data_dir.resolve()
    # Every metric the processes write, added up by the API's /metrics; empty at each start.
    metrics = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or data_dir / "metrics")
    metrics.mkdir(parents=True, exist_ok=True)
    for stale in metrics.glob("*.db"):
        stale.unlink()
    stack = Stack(data_dir=data_dir, ports=ports, log_dir=data_dir / "log", named_logs=True)
    # The settings' VAR_DIR is where the run file goes and where `manage.py` reads it.
    stack.env = {
        **stack.addresses(),
        "FRONTSERVICE_VAR_DIR": str(data_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    run_file = data_dir / "run.env"
    # SIGTERM unwinds like Ctrl-C, so the `finally` below stops every process started here;
    # SIGINT too when a shell started this in the background (it then ignores SIGINT).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        # What this run chose, for every `manage.py` command while it runs (the development
        # settings read it where the environment says nothing; frontservice/env.py).
        _write_run_file(run_file, stack.addresses())
        for name in PROCESSES:
            if name == "migrate":
                stack.run(name)
                continue
            process = stack.start(name)
            print(f"started {name} (pid {process.pid}, log {_shown(process.log_path)})", flush=True)
        print(_banner(stack, run_file), flush=True)
        while (exited := stack.exited()) is None:
            time.sleep(WATCH_INTERVAL)
        print(f"{exited} exited; see {_shown(stack.log_dir)}/{exited}.log", file=sys.stderr)
        return 1
    except ProcessStartError as error:
        print(f"could not start FrontService: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nstopping...", flush=True)
        run_file.unlink(missing_ok=True)
        stack.stop_all()


def _in_use(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _write_run_file(path: Path, addresses: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}={value}" for name, value in addresses.items()]
    header = "# Written by make run (python -m launcher) for manage.py; removed when it stops."
    path.write_text("\n".join([header, *lines]) + "\n")


def _banner(stack: Stack, run_file: Path) -> str:
    api = stack.url("api")
    python = _shown(PYTHON)
    manage = f"{python} manage.py"
    if stack.data_dir != REPO / "var":  # the settings' default VAR_DIR
        manage = f"FRONTSERVICE_VAR_DIR={shlex.quote(_shown(stack.data_dir))} {manage}"
    return f"""
FrontService is running on {api} (Ctrl-C stops everything).

  TOKEN=$({python} manage.py issue_token --tenant acme --sub alice)
  curl -si -X POST {api}/api/v1/job -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: text/plain' --data-binary 'hello world'
  curl -s {api}/api/v1/job/<id>/status -H "Authorization: Bearer $TOKEN"
  curl -s {api}/api/v1/job/<id>/output -H "Authorization: Bearer $TOKEN"

API docs: {api}/api/docs/   admin: {api}/admin/
Operator commands find these processes through {_shown(run_file)}, with nothing to export:
  make manage ARGS=jobs_summary          (or: {manage} jobs_summary)
  make manage ARGS=createsuperuser       then log in to the admin
Logs (one JSON object per line): {_shown(stack.log_dir)}/
"""


def _shown(path: str | Path) -> str:
    # `.venv/bin/python`, `var/log`: as typed in the repository, rather than absolute paths.
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
