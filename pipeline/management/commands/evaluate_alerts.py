"""`manage.py evaluate_alerts`: the 5-minute alerts job, by hand (opens, updates and resolves alerts,
notifies about changes)."""

from django.core.management.base import BaseCommand

from pipeline.monitoring.alerts import alerts_evaluate


class Command(BaseCommand):
    help = "Evaluate the alert rules now and print what fired, what resolved and what is still firing."

    def handle(self, *args, **options):
        summary = alerts_evaluate()
        for rule, observation in summary["observations"].items():
            state = "FIRING" if rule in summary["firing"] else "ok"
            value, threshold = observation["value"], observation["threshold"]
            self.stdout.write(f"{rule:<24} {state:<7} value={value} threshold={threshold}")
        self.stdout.write(
            f"fired: {', '.join(summary['fired']) or 'none'}; resolved: {', '.join(summary['resolved']) or 'none'}"
        )
