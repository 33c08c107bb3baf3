from django.core.management.base import BaseCommand

from jobs.management.operator_options import DURATION_HELP, duration
from orchestration.reconcile import reconcile
from webhooks.reconcile import webhooks_reconcile


class Command(BaseCommand):
    help = (
        "Run one reconciler pass now: re-enqueue stuck CREATED/STORED jobs, refresh SUBMITTED "
        "ones, send the cancel of CANCELLING ones to JobService again, enqueue webhooks nobody "
        "is sending, remove staged inputs nobody needs. The cluster runs it on a schedule anyway."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--stuck-after",
            type=duration,
            metavar="AGE",
            help=f"{DURATION_HELP} (default: RECONCILE_STUCK_AFTER)",
        )
        parser.add_argument(
            "--refresh-after",
            type=duration,
            metavar="AGE",
            help=f"{DURATION_HELP}, for SUBMITTED and CANCELLING jobs "
            "(default: RECONCILE_REFRESH_AFTER)",
        )
        parser.add_argument(
            "--webhook-after",
            type=duration,
            metavar="AGE",
            help=f"{DURATION_HELP} (default: RECONCILE_STUCK_AFTER)",
        )

    def handle(self, *args, **options):
        # The worker tier's pass, then the webhooks' (each app reconciles what it owns).
        report = reconcile(
            stuck_after=options["stuck_after"], refresh_after=options["refresh_after"]
        )
        webhooks = webhooks_reconcile(webhook_after=options["webhook_after"])
        self.stdout.write(f"{report}, {len(webhooks)} webhooks enqueued")
        for job_id in report.requeued:
            self.stdout.write(f"requeued  {job_id}")
        for job_id in report.refreshed:
            self.stdout.write(f"refreshed {job_id}")
        for job_id in report.cancel_retried:
            self.stdout.write(f"cancel retried {job_id}")
        for job_id in webhooks:
            self.stdout.write(f"webhook   {job_id}")
