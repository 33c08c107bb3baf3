"""What the operator commands (`retry_jobs`, `retry_webhooks`) share: option types, who is
acting, ids the filters left out, and the table they print."""

import argparse
import getpass
import re
import uuid
from datetime import timedelta

from django.core.management.base import CommandError

from jobs.models import Job

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a whole number and s, m, h or d, like 30m, 2h or 1d"
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (a UUID)") from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def operator(name: str | None) -> str:
    """`by` for a job's history: operator:<name>, the OS user unless a name is given."""
    if name:
        return f"operator:{name}"
    try:
        return f"operator:{getpass.getuser()}"
    except OSError:
        # No login name (a container running as an unnamed uid): say who explicitly.
        raise CommandError("Cannot tell who you are from the OS; pass --by NAME.") from None


def unselected(
    ids: list[uuid.UUID], *, selected: set[uuid.UUID]
) -> list[tuple[uuid.UUID, Job | None]]:
    """The ids the operator named that the filters left out, with their job (None: no such
    job), so that none vanishes silently from the table."""
    missing = [job_id for job_id in ids if job_id not in selected]
    existing = {job.id: job for job in Job.objects.filter(pk__in=missing)}
    return [(job_id, existing.get(job_id)) for job_id in missing]


def table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    lines = []
    for row in [columns, *rows]:
        # The last column (detail) is free text and is not padded.
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)
