"""What the operator commands share: option types (every duration and job id is read the same
way by `retry_jobs`, `retry_webhooks`, `reconcile` and `jobs_summary`), the common options, who
is acting, ids the filters left out, and the report they print."""

import argparse
import getpass
import re
import uuid
from datetime import timedelta

from django.core.management.base import CommandError

from jobs.models import Job

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
DURATION_HELP = "90s, 15m, 2h, 7d, or seconds"


def duration(text: str) -> timedelta:
    """A duration as every operator command takes it: 90s, 15m, 2h, 7d, or plain seconds (90)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number and s, m, h or d (90s, 15m, 2h, 7d), or "
            "plain seconds"
        )
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def add_job_ids_argument(parser: argparse.ArgumentParser, *, help: str) -> None:
    """Job ids as positional arguments; `--job ID...` is the same (the older spelling)."""
    parser.add_argument("job_ids", nargs="*", type=job_id, metavar="JOB_ID", help=help)
    parser.add_argument(
        "--job",
        dest="more_job_ids",
        nargs="+",
        action="extend",
        type=job_id,
        default=[],
        metavar="JOB_ID",
        help="the same as giving the ids as arguments",
    )


def job_ids_given(options: dict) -> list[uuid.UUID]:
    """The ids given either way, once each, in the order given."""
    return list(dict.fromkeys([*options["job_ids"], *options["more_job_ids"]]))


def job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (a UUID)") from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def add_common_arguments(
    parser: argparse.ArgumentParser, *, older_than_help: str, acting: str, default_reason: str
) -> None:
    """--older-than, --tenant, --limit, --dry-run, --by and --reason, as both commands take them."""
    parser.add_argument("--older-than", type=duration, metavar="AGE", help=older_than_help)
    parser.add_argument("--tenant", metavar="TENANT", help="select this tenant's jobs only")
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="at most this many jobs, oldest first"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be done, change nothing"
    )
    parser.add_argument(
        "--by",
        metavar="NAME",
        help=f"who is {acting}, recorded as operator:NAME (default: the OS user)",
    )
    parser.add_argument(
        "--reason",
        default=default_reason,
        metavar="TEXT",
        help="why, recorded in each job's history",
    )


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


def report(
    columns: tuple[str, ...], rows: list[tuple[str, ...]], *, dry_run: bool, summary: str
) -> str:
    """What a command prints: the dry-run banner, the table (or that nothing was selected) and
    its one-line summary."""
    lines = ["Dry run: nothing is changed or enqueued."] if dry_run else []
    lines.append(table(columns, rows) if rows else "No jobs selected.")
    lines.append(summary)
    return "\n".join(lines)
