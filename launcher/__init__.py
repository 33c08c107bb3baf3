"""Starts and stops FrontService's processes: `make run` (``python -m launcher``), the
end-to-end tests' stack and the benchmarks' all use it.

- ``launcher.processes``: one child process (ManagedProcess), started in a session of its own
  with its output in a log file, awaited until ready, stopped by its PID.
- ``launcher.stack``: the process set (the embedded MongoDB, the migration, the reference
  BlobService and JobService, the worker, the API): each one's command line, port and
  readiness check, started in order and stopped in reverse.

It imports nothing of the service (pyproject.toml's import contracts): it knows the processes by
their command lines only, so it cannot pull Django's settings into a test or benchmark runner.
"""
