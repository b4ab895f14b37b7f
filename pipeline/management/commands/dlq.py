"""`manage.py dlq list|retry|discard`: the dead-letter queue by hand.

dlq list [--source S] [--status open|retrying|resolved|discarded|pending] [--limit N]
dlq retry ID [ID ...]        retry those rows now (Instantly pushes re-push; other sources use
                             the configured reprocessor)
dlq retry --due              what the 15-minute job does: every row whose retry_after has passed
dlq discard ID [ID ...] --note "why"
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from equity_connect.db import service_context
from pipeline.campaigns.push_retry import dlq_retry_now_run, dlq_retry_run
from pipeline.dlq import DLQError, dlq_discard, dlq_list
from pipeline.models import PipelineDLQ


class Command(BaseCommand):
    help = "List, retry or discard dead-letter queue rows."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="list rows (newest first)")
        listing.add_argument("--source", default=None)
        listing.add_argument("--status", default="pending", help="open|retrying|resolved|discarded|pending|all")
        listing.add_argument("--limit", type=int, default=50)
        retry = sub.add_parser("retry", help="retry rows now")
        retry.add_argument("ids", nargs="*", type=int)
        retry.add_argument("--due", action="store_true", help="retry every row whose retry_after has passed")
        discard = sub.add_parser("discard", help="discard rows (a note saying why is required)")
        discard.add_argument("ids", nargs="+", type=int)
        discard.add_argument("--note", required=True)

    def handle(self, *args, action=None, **options):
        getattr(self, f"_{action}")(**options)

    def _list(self, *, source=None, status="pending", limit=50, **options):
        with service_context():
            rows = list(dlq_list(status=None if status == "all" else status, source=source)[:limit])
            for row in rows:
                retry = f" retry_after {timezone.localtime(row.retry_after):%Y-%m-%d %H:%M}" if row.retry_after else ""
                self.stdout.write(
                    f"#{row.id} {row.source} {row.status} attempts {row.attempts}/{row.max_attempts}"
                    f"{retry} — {row.reason}"
                )
        self.stdout.write(f"{len(rows)} row(s)")

    def _retry(self, *, ids=(), due=False, **options):
        if not ids and not due:
            raise CommandError("give row ids, or --due")
        result = dlq_retry_run() if due else dlq_retry_now_run(row_ids=list(ids))
        if result.status == "failure":
            raise CommandError(result.message)
        self.stdout.write(result.message)

    def _discard(self, *, ids=(), note="", **options):
        failures = 0
        for row_id in ids:
            try:
                with service_context():
                    item = PipelineDLQ.objects.filter(pk=row_id).first()
                    if item is None:
                        raise DLQError(f"no DLQ row #{row_id}")
                    dlq_discard(item=item, note=note)
                self.stdout.write(f"#{row_id}: discarded")
            except DLQError as exc:
                failures += 1
                self.stderr.write(f"#{row_id}: {exc}")
        if failures:
            raise CommandError(f"{failures} row(s) not discarded")
