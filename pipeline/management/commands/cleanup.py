"""`manage.py cleanup`: the daily cleanups, by hand (replay guards, consent tokens, upload files, rate limits)."""

from django.core.management.base import BaseCommand, CommandError

from pipeline.cleanup import cleanup_run


class Command(BaseCommand):
    help = "Remove replay guards > 7 days, consent tokens used/expired > 30 days, expired upload files, rate limits."

    def handle(self, *args, **options):
        result = cleanup_run()
        if result.status == "failure":
            raise CommandError(result.message)
        self.stdout.write(result.message)
