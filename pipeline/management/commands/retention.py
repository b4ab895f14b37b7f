"""`manage.py retention`: the daily retention job, by hand (pipeline/retention.py says what it removes)."""

from django.core.management.base import BaseCommand, CommandError

from pipeline.retention import retention_run


class Command(BaseCommand):
    help = "Apply the retention periods: DLQ payloads, staged rows, webhook deliveries, event detail, audit records."

    def handle(self, *args, **options):
        result = retention_run()
        if result.status == "failure":
            raise CommandError(result.message)
        self.stdout.write(result.message)
