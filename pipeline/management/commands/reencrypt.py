"""`manage.py reencrypt [--batch N]`: rotate the PII keys (pipeline/reencrypt.py) in batches, while the
application runs. Resumable: run it again after an interruption. Prints its progress."""

from django.core.management.base import BaseCommand, CommandError

from equity_connect.db import service_context
from equity_connect.events import record_event
from pipeline.reencrypt import DEFAULT_BATCH, RotationProgress, pii_reencrypt
from security.pii import codec


class Command(BaseCommand):
    help = (
        "Encrypt again under the current PII key every value under an old one, and index every lead under the "
        "current blind-index version. Batches; safe to interrupt and run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"rows per batch ({DEFAULT_BATCH})")

    def handle(self, *args, batch: int, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        pii = codec()
        self.stdout.write(
            f"current PII key {pii.current_key_id!r}, blind-index version {pii.current_index_version!r}; "
            f"batches of {batch}"
        )

        def progress(step: RotationProgress) -> None:
            self.stdout.write(f"  {step.part}: {step.rows} rows done")

        totals = pii_reencrypt(batch=batch, progress=progress)
        with service_context():
            record_event(
                "pii_reencrypted",
                data={"key_id": pii.current_key_id, "index_version": pii.current_index_version, "rows": totals},
            )
        done = sum(totals.values())
        self.stdout.write(f"re-encrypted {done} rows" + (": nothing was left under an old key" if not done else ""))
