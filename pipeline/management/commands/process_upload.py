"""`manage.py process_upload <upload_id>`: run (or re-run) an upload's ingestion in this process.

Ops use it to re-run a failed upload; it is also the worker the crash-safety test kills."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pipeline.ingest.services import upload_ingest


class Command(BaseCommand):
    help = "Ingest one upload now (idempotent: a done upload is left alone)."

    def add_arguments(self, parser):
        parser.add_argument("upload_id")

    def handle(self, *args, upload_id, **options):
        upload = upload_ingest(upload_id=upload_id)
        if upload is None:
            raise CommandError(f"upload {upload_id} is being processed by another worker")
        self.stdout.write(
            f"upload {upload.id}: {upload.status} rows_total={upload.rows_total} leads_created={upload.leads_created}"
            f" leads_merged={upload.leads_merged} duplicates_in_file={upload.duplicates_in_file}"
            f" rows_rejected={upload.rows_rejected}"
        )
