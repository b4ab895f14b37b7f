"""`manage.py healthcheck`: what /healthz answers, from a shell (exit status 1 when unhealthy), plus what only
an operator may see: whether signature enforcement is on."""

import json

from django.core.management.base import BaseCommand, CommandError

from pipeline.monitoring.health import health_check


class Command(BaseCommand):
    help = "Check the database, pending migrations and the scheduler heartbeat; print the /healthz report."

    def handle(self, *args, **options):
        healthy, report = health_check(for_operator=True)
        self.stdout.write(json.dumps(report, indent=2))
        if not healthy:
            raise CommandError("unhealthy")
