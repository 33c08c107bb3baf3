"""Running the operator commands (`retry_jobs`, `retry_webhooks`) and reading their tables."""

import io
import re

from django.core.management import call_command


def run_command(name: str, *args) -> str:
    """What `manage.py <name> <args>` prints."""
    out = io.StringIO()
    call_command(name, *[str(arg) for arg in args], stdout=out)
    return out.getvalue()


def rows(output: str) -> list[tuple[str, ...]]:
    """The table's job rows, one tuple of cells each (jobs/management/operator_options.py
    pads the cells with at least two spaces)."""
    return [
        tuple(re.split(r"\s{2,}", line.strip()))
        for line in output.splitlines()
        if re.match(r"[0-9a-f]{8}-", line)
    ]
