from django.core.management.base import BaseCommand, CommandError

from equity_connect.db import service_context
from leads.services import VerificationFlagsRefused, verification_flags_init


class Command(BaseCommand):
    help = (
        "Seed Phase 5.2: mark phone/email verified wherever a phone/email exists. Meant for a database before "
        "its first campaign: refuses when leads are in campaigns unless --force. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
        parser.add_argument("--force", action="store_true", help="run even though leads are in campaigns")

    def handle(self, *args, dry_run=False, force=False, **options):
        try:
            with service_context(budget="import"):
                counts = verification_flags_init(dry_run=dry_run, force=force)
        except VerificationFlagsRefused as refused:
            raise CommandError(str(refused)) from refused
        verb = "would be set" if dry_run else "set"
        self.stdout.write(f"phone_verified {verb} on {counts['phone_verified']} lead(s)")
        self.stdout.write(f"email_verified {verb} on {counts['email_verified']} lead(s)")
        if counts["in_campaigns"]:
            self.stdout.write(f"{counts['in_campaigns']} lead(s) are in campaigns")
