"""`manage.py refresh_contactable_leads`: the 05:30 MV refresh, by hand (same job, lock and event)."""

from django.core.management.base import BaseCommand, CommandError

from pipeline.campaigns.contactable import contactable_leads_refresh_run


class Command(BaseCommand):
    help = "REFRESH MATERIALIZED VIEW CONCURRENTLY mv_contactable_leads (under the job's advisory lock)."

    def handle(self, *args, **options):
        result = contactable_leads_refresh_run()
        if result.status == "failure":
            raise CommandError(result.message)
        self.stdout.write(f"{result.message} ({result.duration_ms} ms)")
