"""`manage.py consent_link <lead-id>`: create a signed, single-use consent link and print its URL."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from equity_connect.db import service_context
from leads.models import Lead
from leads.services import LeadError, consent_link_create


class Command(BaseCommand):
    help = "Create a signed, single-use consent link for a lead and print the URL (valid CONSENT_TOKEN_TTL_DAYS days)."

    def add_arguments(self, parser):
        parser.add_argument("lead_id", help="The lead's id (uuid)")

    def handle(self, *args, lead_id: str, **options):
        try:
            lead_uuid = uuid.UUID(lead_id)
        except ValueError:
            raise CommandError(f"not a lead id: {lead_id!r}") from None
        with service_context():
            lead = Lead.objects.filter(pk=lead_uuid).first()
            if lead is None:
                raise CommandError(f"no lead with id {lead_uuid}")
            try:
                url = consent_link_create(lead=lead, broker=lead.assigned_broker_id)
            except LeadError as error:
                raise CommandError(str(error)) from None
        self.stdout.write(url)
