"""Who a privacy request is about, and the set-based lookups of their records outside the leads table.

A person is given by e-mail and/or phone, normalised exactly as ingestion normalises them
(pipeline/ingest/normalise.py), so "Jane@Example.com " and "(212) 555-0143" find what ingestion stored. Leads are
found by `leads.selectors.person_leads` (the one lookup that moves to blind indexes). Raw rows (a DLQ row's
payload, a staged row's `raw`) are matched value by value: an e-mail equal to theirs ignoring case and spaces, or
a value whose digits are their national number (with or without the country code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leads.selectors import person_leads
from pipeline.ingest import normalise
from pipeline.models import WebhookDelivery


class PrivacyError(Exception):
    """A privacy request that cannot be carried out; the message is safe to show."""


@dataclass(frozen=True)
class Person:
    email: str | None
    phone: str | None  # E.164

    @classmethod
    def of(cls, *, email: str | None = None, phone: str | None = None) -> Person:
        """Normalise what was given; PrivacyError when neither is a valid e-mail address or phone number."""
        normalised_email = normalise.email(email) if email else None
        normalised_phone = normalise.phone(phone) if phone else None
        if email and not normalised_email:
            raise PrivacyError("That is not a valid e-mail address.")
        if phone and not normalised_phone:
            raise PrivacyError("That is not a valid phone number.")
        if not normalised_email and not normalised_phone:
            raise PrivacyError("Give the person's e-mail address or phone number.")
        return cls(email=normalised_email, phone=normalised_phone)

    @property
    def national_digits(self) -> str:
        """The phone's digits without a NANP country code ("+12125550143" → "2125550143"); "" without a phone."""
        digits = re.sub(r"\D", "", self.phone or "")
        return digits[1:] if self.phone and self.phone.startswith("+1") else digits

    @property
    def needles(self) -> list[str]:
        """The texts whose presence in a free-text or JSON field means the field is about this person."""
        return [value for value in (self.email, self.phone, self.national_digits) if value]

    @property
    def label(self) -> str:
        """How the request is named in records and events: which kinds were given, never the values."""
        return "+".join(kind for kind, value in (("email", self.email), ("phone", self.phone)) if value)

    def params(self) -> dict:
        digits = self.national_digits
        return {
            "email": self.email or "",
            "phones": [value for value in {digits, "1" + digits} if digits] if digits else [],
            "needles": self.needles,
        }

    def leads(self):
        return person_leads(email=self.email, phone=self.phone)


# A JSON document (a DLQ payload, a staged row's raw columns) holds one of the person's values at any depth.
JSON_MATCH = """
EXISTS (
  SELECT 1 FROM jsonb_path_query({column}, 'strict $.** ? (@.type() == "string")') AS item(value)
   WHERE (%(email)s <> '' AND lower(btrim(item.value #>> '{{}}')) = %(email)s)
      OR regexp_replace(item.value #>> '{{}}', '\\D', '', 'g') = ANY(%(phones)s::text[])
)
"""

DLQ_ROWS_SQL = (
    "SELECT id FROM pipeline_dlq WHERE lead_id = ANY(%(lead_ids)s::uuid[]) OR "
    + JSON_MATCH.format(column="payload")
    + " ORDER BY id"
)

STAGING_ROWS_SQL = (
    "SELECT id FROM leads_staging WHERE (%(email)s <> '' AND lower(email) = %(email)s)"
    " OR regexp_replace(coalesce(phone, ''), '\\D', '', 'g') = ANY(%(phones)s::text[]) OR "
    + JSON_MATCH.format(column="raw::jsonb")
    + " ORDER BY id"
)


def person_row_ids(cursor, person: Person, lead_ids: list[str]) -> dict[str, list[int]]:
    """The ids of the person's DLQ rows (theirs by lead, or by a value in the payload) and staged rows."""
    params = {**person.params(), "lead_ids": lead_ids}
    cursor.execute(DLQ_ROWS_SQL, params)
    dlq = [row_id for (row_id,) in cursor.fetchall()]
    cursor.execute(STAGING_ROWS_SQL, params)
    staging = [row_id for (row_id,) in cursor.fetchall()]
    return {"dlq": dlq, "staging": staging}


def person_deliveries(person: Person, lead_ids: list[str]):
    """The inbound Instantly deliveries about the person: for one of their leads, or for their e-mail address."""
    deliveries = WebhookDelivery.objects.filter(lead_id__in=lead_ids)
    if person.email:
        deliveries = deliveries | WebhookDelivery.objects.filter(lead_email__iexact=person.email)
    return deliveries
