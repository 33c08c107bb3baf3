import time

from django.conf import settings
from django.core.management.base import BaseCommand

from orchestration.dispatch import dispatch_pass


class Command(BaseCommand):
    help = (
        "Enqueue the jobs whose next attempt is due (what `manage.py worker` does every "
        "DISPATCH_INTERVAL_SECONDS): one pass with --once, else every interval until stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, **options):
        while True:
            dispatched = dispatch_pass()
            if options["once"]:
                for name, job_ids in dispatched.items():
                    self.stdout.write(f"{name}: {len(job_ids)} enqueued")
                    for job_id in job_ids:
                        self.stdout.write(f"enqueued {job_id}")
                return
            time.sleep(settings.DISPATCH_INTERVAL_SECONDS)
