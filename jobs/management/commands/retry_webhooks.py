import uuid

from django.core.management.base import BaseCommand
from django.db.models import Q

from jobs.management.operator_options import (
    DURATION_HELP,
    add_common_arguments,
    add_job_ids_argument,
    job_ids_given,
    operator,
    report,
    unselected,
)
from jobs.models import WebhookStatus
from jobs.queries import select_jobs
from webhooks.resend import WebhookResendOutcome, webhook_resend

_COLUMNS = ("ID", "TENANT", "STATUS", "WEBHOOK", "ACTION", "NEW DELIVERY", "DETAIL")


class Command(BaseCommand):
    help = (
        "Send failed completion webhooks again, each as a new event (a new "
        "X-FrontService-Delivery id, attempts counted afresh), recording who and why in each "
        "job's history. Without job ids, selects the jobs whose webhook is FAILED."
    )

    def add_arguments(self, parser):
        add_job_ids_argument(
            parser,
            help="these jobs, whatever their webhook's status (the other filters still apply; "
            "only FAILED webhooks are sent, the others are listed as skipped, with the reason)",
        )
        add_common_arguments(
            parser,
            older_than_help="select jobs unchanged for at least this long (final, or last sent "
            "again, that long ago): " + DURATION_HELP,
            acting="sending",
            default_reason="with manage.py retry_webhooks",
        )

    def handle(self, *args, **options):
        ids = job_ids_given(options)
        by = operator(options["by"])
        dry_run = options["dry_run"]

        jobs = list(
            select_jobs(
                statuses=None,
                older_than=options["older_than"],
                tenant=options["tenant"],
                job_ids=ids,
                limit=options["limit"],
                # Named jobs whatever their webhook (the table says why one is skipped).
                where=None if ids else Q(webhook_status=WebhookStatus.FAILED),
            )
        )
        rows = []
        outcomes = []
        for job in jobs:
            outcome = webhook_resend(job, by=by, reason=options["reason"], dry_run=dry_run)
            outcomes.append(outcome)
            rows.append(_row(outcome, job.tenant_id, job.status))
        rows.extend(_unselected(ids, selected={job.id for job in jobs}))

        sent = sum(outcome.action == "resend" for outcome in outcomes)
        skipped = len(rows) - sent
        if dry_run:
            summary = f"Would send {sent} again, skip {skipped}."
        else:
            summary = f"{sent} sent again, {skipped} skipped."
        self.stdout.write(report(_COLUMNS, rows, dry_run=dry_run, summary=summary))


def _row(outcome: WebhookResendOutcome, tenant_id: str, status: str) -> tuple[str, ...]:
    return (
        str(outcome.job_id),
        tenant_id,
        status,
        outcome.webhook_status or "-",
        outcome.action,
        str(outcome.delivery_id) if outcome.delivery_id else "-",
        outcome.detail,
    )


def _unselected(ids: list[uuid.UUID], *, selected: set[uuid.UUID]) -> list[tuple[str, ...]]:
    rows = []
    for missing, job in unselected(ids, selected=selected):
        if job is None:
            rows.append((str(missing), "-", "-", "-", "skip", "-", "no such job"))
        else:
            detail = "not selected by --older-than/--tenant/--limit"
            webhook = job.webhook_status or "-"
            rows.append((str(missing), job.tenant_id, job.status, webhook, "skip", "-", detail))
    return rows
