"""`manage.py consent_link <lead-id>`: create a signed, single-use consent link and print its URL.

A staff tool, by hand. Whoever holds the link can answer for the lead, so it goes to the lead only: brokers
send links from the portal, which e-mails them to the lead and never shows them."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from equity_connect.db import service_context
from leads.consent.services import consent_link_create
from leads.models import Lead
from leads.services import LeadError


class Command(BaseCommand):
    help = (
        "Staff only: create a signed, single-use consent link for a lead and print the URL (valid "
        "CONSENT_TOKEN_TTL_DAYS days). Whoever holds it can answer for the lead: give it to the lead only, never to "
        "a broker (brokers e-mail links to their leads from the portal, which never shows them)."
    )

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
