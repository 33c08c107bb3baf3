import argparse
import getpass
import re
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from jobs.models import Job
from jobs.retries import REQUEUE, RETRY_TARGET, RetryOutcome, job_retry, select_jobs
from jobs.states import Status

# Without ids or --status: the jobs that failed and can be retried. CREATED/STORED are only
# selected on request, and with --older-than: a fresh one is not stuck, the worker is on it.
DEFAULT_STATUSES = [Status.STORED_ERROR, Status.SUBMITTED_ERROR]
SELECTABLE = sorted(str(status) for status in (*RETRY_TARGET, *REQUEUE))

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_COLUMNS = ("ID", "TENANT", "STATUS", "ACTION", "NEW STATUS", "DETAIL")


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


class Command(BaseCommand):
    help = (
        "Retry failed jobs (STORED_ERROR -> CREATED, SUBMITTED_ERROR -> STORED) or requeue stuck "
        "ones (CREATED/STORED), recording who and why in each job's history. Without job ids "
        "or --status, selects STORED_ERROR and SUBMITTED_ERROR jobs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "job_ids",
            nargs="*",
            type=job_id,
            metavar="JOB_ID",
            help="these jobs, whatever their status (the other filters still apply)",
        )
        parser.add_argument(
            "--status",
            nargs="+",
            action="extend",
            type=str.upper,
            choices=SELECTABLE,
            metavar="STATUS",
            help=f"select jobs in these statuses: {', '.join(SELECTABLE)} (CREATED and STORED "
            "need --older-than or ids)",
        )
        parser.add_argument(
            "--older-than",
            type=duration,
            metavar="AGE",
            help="select jobs unchanged for at least this long: 30s, 30m, 2h, 1d",
        )
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
            help="who is retrying, recorded as operator:NAME (default: the OS user)",
        )
        parser.add_argument(
            "--reason",
            default="retried with manage.py retry_jobs",
            metavar="TEXT",
            help="why, recorded in each job's history",
        )

    def handle(self, *args, **options):
        ids = list(dict.fromkeys(options["job_ids"]))  # once each, in the order given
        statuses = options["status"] or ([] if ids else DEFAULT_STATUSES)
        older_than = options["older_than"]
        in_flight = sorted(set(statuses) & REQUEUE)
        if in_flight and older_than is None and not ids:
            raise CommandError(
                f"--status {'/'.join(in_flight)} selects jobs the worker may still be on: add "
                "--older-than (how long unchanged makes one stuck), or give the job ids."
            )
        by = f"operator:{options['by'] or _os_user()}"
        dry_run = options["dry_run"]

        jobs = list(
            select_jobs(
                statuses=statuses,
                older_than=older_than,
                tenant=options["tenant"],
                job_ids=ids,
                limit=options["limit"],
            )
        )
        rows = []
        outcomes = []
        for job in jobs:
            outcome = job_retry(job, by=by, reason=options["reason"], dry_run=dry_run)
            outcomes.append(outcome)
            rows.append(_row(outcome, job.tenant_id))
        rows.extend(_unselected(ids, selected={job.id for job in jobs}))

        if dry_run:
            self.stdout.write("Dry run: nothing is changed or enqueued.")
        if not rows:
            self.stdout.write("No jobs selected.")
        else:
            self.stdout.write(_table(rows))
        self.stdout.write(_summary(outcomes, skipped=len(rows) - len(outcomes), dry_run=dry_run))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except OSError:
        # No login name (a container running as an unnamed uid): say who explicitly.
        raise CommandError("Cannot tell who you are from the OS; pass --by NAME.") from None


def _row(outcome: RetryOutcome, tenant_id: str) -> tuple[str, ...]:
    return (
        str(outcome.job_id),
        tenant_id,
        outcome.from_status,
        outcome.action,
        outcome.to_status,
        outcome.detail,
    )


def _unselected(ids: list[uuid.UUID], *, selected: set[uuid.UUID]) -> list[tuple[str, ...]]:
    """Rows for ids the operator named that the filters left out, so none vanishes silently."""
    missing = [job_id for job_id in ids if job_id not in selected]
    existing = {job.id: job for job in Job.objects.filter(pk__in=missing)}
    rows = []
    for job_id in missing:
        job = existing.get(job_id)
        if job is None:
            rows.append((str(job_id), "-", "-", "skip", "-", "no such job"))
        else:
            detail = "not selected by --status/--older-than/--tenant/--limit"
            rows.append((str(job_id), job.tenant_id, job.status, "skip", job.status, detail))
    return rows


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = []
    for row in [_COLUMNS, *rows]:
        # The last column (detail) is free text and is not padded.
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _summary(outcomes: list[RetryOutcome], *, skipped: int, dry_run: bool) -> str:
    retried = sum(outcome.action == "retry" for outcome in outcomes)
    requeued = sum(outcome.action == "requeue" for outcome in outcomes)
    skipped += sum(outcome.action == "skip" for outcome in outcomes)
    if dry_run:
        return f"Would retry {retried}, requeue {requeued}, skip {skipped}."
    return f"{retried} retried, {requeued} requeued, {skipped} skipped."
