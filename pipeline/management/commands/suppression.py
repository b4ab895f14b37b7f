"""`manage.py suppression add|remove|list|import`: the suppression list by hand (leads/suppressions/services.py).

suppression add --kind email|email_domain|phone|address --reason R [--value V] [--channels email,sms,phone]
                [--address "12 Main St" --unit 4 --city Albany --state NY --zip 12207] [--note …] [--by NAME]
suppression remove ID --note "why" [--by NAME]
suppression list [--kind K] [--reason R] [--value V] [--all] [--limit N]
suppression import FILE.csv [--source S] [--by NAME]
    columns: kind, value, reason, channels (manual only), note; an address row may give address, unit, city,
    state, zip instead of a value. One INSERT and one mark for the whole file; rows already listed are skipped;
    one bad row stops the import (nothing added) and names its line.

Values are normalised as the ingestion normalises them (pipeline/suppressions/values.py). Nothing prints a
listed value: entries show their masked label.
"""

import csv
import io
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from equity_connect.db import service_context
from leads.suppressions.models import Suppression
from leads.suppressions.rules import SuppressionInvalid, SuppressionKind, SuppressionReason
from leads.suppressions.selectors import suppression_list
from leads.suppressions.services import suppression_add, suppression_import_rows, suppression_remove
from pipeline.suppressions.values import value_normalise

ADDRESS_FIELDS = {"address": "address", "unit": "unit", "city": "city", "state": "state", "zip": "zip_code"}


class Command(BaseCommand):
    help = "Add, remove, list or import entries of the suppression list."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add one entry")
        add.add_argument("--kind", required=True, choices=SuppressionKind.values)
        add.add_argument("--reason", required=True, choices=SuppressionReason.values)
        add.add_argument("--value", default="")
        add.add_argument("--channels", default="", help="manual entries: email,sms,phone")
        for name in ADDRESS_FIELDS:
            add.add_argument(f"--{name}", default="")
        add.add_argument("--note", default="")
        add.add_argument("--by", default="")
        remove = sub.add_parser("remove", help="remove one entry (it stays in the history)")
        remove.add_argument("id", type=int)
        remove.add_argument("--note", required=True)
        remove.add_argument("--by", default="")
        listing = sub.add_parser("list", help="list entries, newest first")
        listing.add_argument("--kind", default=None)
        listing.add_argument("--reason", default=None)
        listing.add_argument("--value", default=None, help="an exact e-mail, domain or phone")
        listing.add_argument("--all", action="store_true", help="removed entries too")
        listing.add_argument("--limit", type=int, default=50)
        importing = sub.add_parser("import", help="import a CSV file of entries")
        importing.add_argument("file")
        importing.add_argument("--source", default="")
        importing.add_argument("--by", default="")

    def handle(self, *args, action=None, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except SuppressionInvalid as error:
            raise CommandError(str(error)) from None

    def _add(self, *, kind, reason, value="", channels="", note="", by="", **options):
        address = {ADDRESS_FIELDS[name]: options.get(name) or "" for name in ADDRESS_FIELDS}
        canonical = value_normalise(kind, value, **address)
        chosen = [part for part in channels.replace(";", ",").split(",") if part.strip()]
        with service_context():
            outcome = suppression_add(
                kind=kind, reason=reason, value=canonical, channels=chosen, source="manage.py suppression",
                note=note, by=by or "manage.py suppression",
            )  # fmt: skip
        state = "added" if outcome.created else "already listed as"
        self.stdout.write(f"{state} #{outcome.entry.pk} {outcome.entry}; {outcome.leads_marked} leads marked")

    def _remove(self, *, id, note, by="", **options):
        with service_context():
            try:
                outcome = suppression_remove(entry=id, note=note, by=by or "manage.py suppression")
            except Suppression.DoesNotExist:
                raise CommandError(f"no entry #{id}") from None
        self.stdout.write(f"removed #{outcome.entry.pk}; {outcome.leads_marked} leads' marks changed")

    def _list(self, *, kind=None, reason=None, value=None, all=False, limit=50, **options):
        with service_context():
            entries = list(suppression_list(kind=kind, reason=reason, value=value, active=not all)[:limit])
        for entry in entries:
            removed = f" removed {entry.removed_at:%Y-%m-%d} ({entry.removed_note})" if entry.removed_at else ""
            self.stdout.write(
                f"#{entry.pk} {entry.created_at:%Y-%m-%d} {entry.kind} {entry.label} {entry.reason}"
                f" [{','.join(entry.channels)}] {entry.source} by {entry.created_by_name or '-'}{removed}"
            )
        self.stdout.write(f"{len(entries)} entries")

    def _import(self, *, file, source="", by="", **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{path.name}: no such file")
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
        rows = []
        for line, record in enumerate(reader, start=2):
            record = {(key or "").strip().lower(): (item or "").strip() for key, item in record.items()}
            address = {ADDRESS_FIELDS[name]: record.get(name, "") for name in ADDRESS_FIELDS}
            try:
                value = value_normalise(record.get("kind", ""), record.get("value", ""), **address)
            except SuppressionInvalid as error:
                raise CommandError(f"line {line}: {error}") from None
            rows.append({**record, "value": value})
        with service_context():
            counts = suppression_import_rows(
                rows=rows, source=source or f"csv:{path.name}", by=by or "manage.py suppression"
            )
        self.stdout.write(
            f"{counts['rows']} rows: {counts['added']} added, {counts['already_listed']} already listed;"
            f" {counts['leads_marked']} leads marked"
        )
