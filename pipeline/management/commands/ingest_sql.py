"""`manage.py ingest_sql [--lead-events] [--shared]`: print every statement of the ingestion's apply step, in
order, as psql can run it (`%(upload)s` becomes `:'upload'`, `%(source)s` `:'source'`, `%(lines)s` `:lines`):

    \\set upload 'the-upload-uuid'
    \\set source 'by-hand'
    \\set lines NULL
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from pipeline.ingest.sql import apply_statements

PSQL_VARIABLES = {"%(upload)s": ":'upload'", "%(source)s": ":'source'", "%(lines)s": ":lines"}


def as_psql(statement: str) -> str:
    for parameter, variable in PSQL_VARIABLES.items():
        statement = statement.replace(parameter, variable)
    return statement.strip().rstrip(";") + ";"


class Command(BaseCommand):
    help = "Print the SQL of the ingestion's apply step, in order, ready for psql."

    def add_arguments(self, parser):
        parser.add_argument("--lead-events", action="store_true", help="the variant that records per-lead events")
        parser.add_argument("--shared", action="store_true", help="the variant for leads several properties meet")

    def handle(self, *args, lead_events=False, shared=False, **options):
        self.stdout.write("\\set ON_ERROR_STOP on\nBEGIN;")
        for what, statement in apply_statements(lead_events=lead_events, shared=shared):
            self.stdout.write(f"\n-- {what}\n{as_psql(statement)}")
        self.stdout.write("\nCOMMIT;")
