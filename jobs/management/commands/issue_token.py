from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.api.tokens import issue_token


class Command(BaseCommand):
    help = "Print a signed JWT for a (tenant, sub) owner, for development and testing."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="value of the tenant claim")
        parser.add_argument("--sub", required=True, help="the user (sub claim)")
        parser.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
        parser.add_argument("--audience", help=f"default: JWT_AUDIENCE ({settings.JWT_AUDIENCE})")
        parser.add_argument("--issuer", help="default: JWT_ISSUER when set")
        parser.add_argument(
            "--private-key-file",
            type=Path,
            help="PEM private key, required for RS*/ES* algorithms (FrontService only verifies)",
        )

    def handle(self, *args, **options):
        if options["lifetime"] <= 0:
            raise CommandError("--lifetime must be positive.")
        signing_key = None
        if not settings.JWT_ALGORITHM.startswith("HS"):
            if not options["private_key_file"]:
                raise CommandError(
                    f"JWT_ALGORITHM={settings.JWT_ALGORITHM} needs --private-key-file to sign."
                )
            signing_key = options["private_key_file"].read_text()
        token = issue_token(
            tenant_id=options["tenant"],
            sub=options["sub"],
            lifetime_seconds=options["lifetime"],
            audience=options["audience"],
            issuer=options["issuer"],
            signing_key=signing_key,
        )
        self.stdout.write(token)
