"""The tests' name for launcher/processes.py: start and stop real processes by PID, never
leaving one behind (ManagedProcess, free_port, wait_for_port)."""

from launcher.processes import (
    ManagedProcess,
    ProcessStartError,
    free_port,
    wait_for_log,
    wait_for_port,
)

__all__ = [
    "ManagedProcess",
    "ProcessStartError",
    "free_port",
    "wait_for_log",
    "wait_for_port",
]
