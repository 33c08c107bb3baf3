import uuid

from django.core.management.base import BaseCommand, CommandError

from jobs.management.operator_options import (
    DURATION_HELP,
    add_common_arguments,
    add_job_ids_argument,
    job_ids_given,
    operator,
    report,
    unselected,
)
from jobs.queries import select_jobs
from jobs.states import Status
from orchestration.resend import REQUEUE, RETRY_TARGET, ResendOutcome, job_resend

# Without ids or --status: the jobs that failed and can be retried. CREATED/STORED are only
# selected on request, and with --older-than: a fresh one is not stuck, the worker is on it.
DEFAULT_STATUSES = [Status.STORED_ERROR, Status.SUBMITTED_ERROR]
SELECTABLE = sorted(str(status) for status in (*RETRY_TARGET, *REQUEUE))

_COLUMNS = ("ID", "TENANT", "STATUS", "ACTION", "NEW STATUS", "DETAIL")


class Command(BaseCommand):
    help = (
        "Retry failed jobs (STORED_ERROR -> CREATED, SUBMITTED_ERROR -> STORED) or requeue stuck "
        "ones (CREATED/STORED), recording who and why in each job's history. Without job ids "
        "or --status, selects STORED_ERROR and SUBMITTED_ERROR jobs."
    )

    def add_arguments(self, parser):
        add_job_ids_argument(
            parser, help="these jobs, whatever their status (the other filters still apply)"
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
        add_common_arguments(
            parser,
            older_than_help=f"select jobs unchanged for at least this long: {DURATION_HELP}",
            acting="retrying",
            default_reason="retried with manage.py retry_jobs",
        )

    def handle(self, *args, **options):
        ids = job_ids_given(options)
        statuses = options["status"] or ([] if ids else DEFAULT_STATUSES)
        older_than = options["older_than"]
        in_flight = sorted(set(statuses) & REQUEUE)
        if in_flight and older_than is None and not ids:
            raise CommandError(
                f"--status {'/'.join(in_flight)} selects jobs the worker may still be on: add "
                "--older-than (how long unchanged makes one stuck), or give the job ids."
            )
        by = operator(options["by"])
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
            outcome = job_resend(job, by=by, reason=options["reason"], dry_run=dry_run)
            outcomes.append(outcome)
            rows.append(_row(outcome, job.tenant_id))
        rows.extend(_unselected(ids, selected={job.id for job in jobs}))

        summary = _summary(outcomes, skipped=len(rows) - len(outcomes), dry_run=dry_run)
        self.stdout.write(report(_COLUMNS, rows, dry_run=dry_run, summary=summary))


def _row(outcome: ResendOutcome, tenant_id: str) -> tuple[str, ...]:
    return (
        str(outcome.job_id),
        tenant_id,
        outcome.from_status,
        outcome.action,
        outcome.to_status,
        outcome.detail,
    )


def _unselected(ids: list[uuid.UUID], *, selected: set[uuid.UUID]) -> list[tuple[str, ...]]:
    rows = []
    for missing, job in unselected(ids, selected=selected):
        if job is None:
            rows.append((str(missing), "-", "-", "skip", "-", "no such job"))
        else:
            detail = "not selected by --status/--older-than/--tenant/--limit"
            rows.append((str(missing), job.tenant_id, job.status, "skip", job.status, detail))
    return rows


def _summary(outcomes: list[ResendOutcome], *, skipped: int, dry_run: bool) -> str:
    retried = sum(outcome.action == "retry" for outcome in outcomes)
    requeued = sum(outcome.action == "requeue" for outcome in outcomes)
    skipped += sum(outcome.action == "skip" for outcome in outcomes)
    if dry_run:
        return f"Would retry {retried}, requeue {requeued}, skip {skipped}."
    return f"{retried} retried, {requeued} requeued, {skipped} skipped."
