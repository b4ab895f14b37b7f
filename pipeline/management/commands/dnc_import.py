"""`manage.py dnc_import <file> [--deletions <file>] [--replace]`: import a national Do-Not-Call registry file
(lines of area code + number) and, optionally, the registry's deletion file; `--replace` when the file is the
whole registry (the monthly full download). See pipeline/suppressions/dnc.py and docs/runbooks/dnc-registry.md.
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.suppressions.dnc import DncFileError, dnc_import


class Command(BaseCommand):
    help = "Import a national Do-Not-Call registry file (area code + number per line), set-based."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--deletions", default=None, help="the registry's deletion file for the same period")
        parser.add_argument("--replace", action="store_true", help="the file is the whole registry")
        parser.add_argument("--by", default="", help="who runs the import (kept with it)")

    def handle(self, *args, file, deletions=None, replace=False, by="", **options):
        try:
            result = dnc_import(path=file, deletions=deletions, replace=replace, by=by or "manage.py dnc_import")
        except DncFileError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"imported {result.numbers_in_file} numbers ({result.invalid_lines} lines without one), "
            f"{result.deletions_in_file} deletions; the registry holds {result.numbers_total}; "
            f"{result.leads_marked} leads' marks changed; {result.seconds:.1f} s"
        )
