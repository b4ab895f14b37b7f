from django.core.management.base import BaseCommand

from equity_connect.db import service_context
from leads.services import campaign_status_backfill


class Command(BaseCommand):
    help = "Seed Phase 5.1: set campaign_status from the legacy status where it is NULL. Safe to re-run."

    def handle(self, *args, **options):
        with service_context():
            counts = campaign_status_backfill()
        total = sum(counts.values())
        self.stdout.write(f"backfilled campaign_status on {total} lead(s)")
        for status, count in sorted(counts.items()):
            self.stdout.write(f"  {status}: {count}")
