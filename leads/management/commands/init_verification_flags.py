from django.core.management.base import BaseCommand

from equity_connect.db import service_context
from leads.services import verification_flags_init


class Command(BaseCommand):
    help = "Seed Phase 5.2: mark phone/email verified where a phone/email exists. Safe to re-run."

    def handle(self, *args, **options):
        with service_context():
            counts = verification_flags_init()
        self.stdout.write(f"phone_verified set on {counts['phone_verified']} lead(s)")
        self.stdout.write(f"email_verified set on {counts['email_verified']} lead(s)")
