"""`manage.py run_campaign_feeder [--dry-run] [--limit N] [--date YYYY-MM-DD]`: the feeder, by hand.

The same job as the 06:00 schedule: the same lock and the same ledger, so a day already fed is not fed
again. `--dry-run` (or no INSTANTLY_API_KEY) shows what would be fed and changes nothing.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from pipeline.campaigns.feeder import campaign_feeder_run


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--date must be YYYY-MM-DD, not {value!r}") from exc


class Command(BaseCommand):
    help = "Feed the day's best queued leads to Instantly (at most once per Los Angeles business day)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="show what would be fed; change nothing")
        parser.add_argument("--limit", type=int, default=None, help="leads to feed (default FEEDER_DAILY_LIMIT)")
        parser.add_argument(
            "--date",
            type=_date,
            default=None,
            help="business date (Los Angeles), default today; weekends feed nothing",
        )

    def handle(self, *args, dry_run=False, limit=None, date=None, **options):
        if limit is not None and limit < 0:
            raise CommandError("--limit must be 0 or more")
        result = campaign_feeder_run(business_date=date, limit=limit, dry_run=dry_run)
        if result.status == "failure":
            raise CommandError(result.message)
        self.stdout.write(result.message)
