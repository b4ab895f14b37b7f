"""`manage.py sync_schedules`: create or update the scheduled jobs of pipeline/schedules.py, by name."""

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

from pipeline.schedules import SCHEDULES, schedules_sync


class Command(BaseCommand):
    help = "Upsert the django-q2 schedules declared in pipeline/schedules.py (never duplicates, never wipes)."

    def handle(self, *args, **options):
        result = schedules_sync()
        for line in result.lines():
            self.stdout.write(line)
        for spec in SCHEDULES:
            schedule = Schedule.objects.filter(name=spec.name).first()
            if schedule and schedule.next_run:
                paused = " (paused)" if schedule.repeats == 0 else ""
                when = timezone.localtime(schedule.next_run)
                self.stdout.write(f"  {spec.name:<28} {spec.cron:<14} next {when:%a %Y-%m-%d %H:%M %Z}{paused}")
