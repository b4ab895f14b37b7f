"""`manage.py healthcheck`: what /healthz answers, from a shell (exit status 1 when unhealthy)."""

import json

from django.core.management.base import BaseCommand, CommandError

from pipeline.monitoring.health import health_check


class Command(BaseCommand):
    help = "Check the database, pending migrations and the scheduler heartbeat; print the /healthz report."

    def handle(self, *args, **options):
        healthy, report = health_check()
        self.stdout.write(json.dumps(report, indent=2))
        if not healthy:
            raise CommandError("unhealthy")
