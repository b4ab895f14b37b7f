"""Who a privacy request is about, and the set-based lookups of their records outside the leads table.

A person is given by e-mail and/or phone, normalised exactly as ingestion normalises them
(pipeline/ingest/normalise.py), so "Jane@Example.com " and "(212) 555-0143" find what ingestion stored. Leads are
found by `leads.selectors.person_leads` and staged rows by the blind indexes of e-mail and phone. Encrypted documents
(a DLQ row's payload, a webhook delivery) are decrypted and matched value by value: an e-mail equal to theirs
ignoring case and spaces, or a value whose digits are their national number (with or without the country code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Q

from leads.contact_indexes import indexes_of
from leads.selectors import person_leads
from pipeline.ingest import normalise
from pipeline.models import LeadStaging, PipelineDLQ, SmsMessage, WebhookDelivery
from security import pii


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


# Personal data outside `leads` is encrypted at rest (security/fields.py): staged rows are found by the blind
# indexes of their e-mail and phone, DLQ payloads and webhook deliveries by decrypting them here, chunk by chunk
# (a privacy request is rare; those tables are bounded by their retention).
SCAN_CHUNK = 2_000


def _text_mentions(value: str, email: str, phones: set[str]) -> bool:
    if email and value.strip().lower() == email:
        return True
    return bool(phones) and re.sub(r"\D", "", value) in phones


def document_mentions(document, person: Person) -> bool:
    """Whether any string in a JSON document, at any depth, is the person's e-mail (ignoring case and spaces) or
    has their phone's digits (with or without the country code)."""
    email = person.email or ""
    phones = set(person.params()["phones"])
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _text_mentions(item, email, phones):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def person_row_ids(cursor, person: Person, lead_ids: list[str]) -> dict[str, list[int]]:
    """The ids of the person's DLQ rows (theirs by lead, or by a value in the payload) and staged rows (by the
    blind index of their e-mail or phone). `cursor` is kept for the callers' transaction."""
    dlq = set(PipelineDLQ.objects.filter(lead_id__in=lead_ids).values_list("id", flat=True))
    for row_id, payload in PipelineDLQ.objects.exclude(id__in=dlq).values_list("id", "payload").iterator(SCAN_CHUNK):
        if document_mentions(payload, person):
            dlq.add(row_id)
    staged = Q(pk__in=[])
    if person.email:
        staged |= Q(email_bidx__in=indexes_of(person.email, pii.EMAIL))
    if person.phone:
        staged |= Q(phone_bidx__in=indexes_of(person.phone, pii.PHONE))
    staging = list(LeadStaging.objects.filter(staged).order_by("id").values_list("id", flat=True))
    return {"dlq": sorted(dlq), "staging": staging}


def person_deliveries(person: Person, lead_ids: list[str]):
    """The inbound Instantly deliveries about the person: for one of their leads, for their e-mail address, or
    naming them in the payload."""
    ids = set(WebhookDelivery.objects.filter(lead_id__in=lead_ids).values_list("pk", flat=True))
    others = WebhookDelivery.objects.exclude(pk__in=ids).values_list("pk", "lead_email", "payload")
    for delivery_id, lead_email, payload in others.iterator(SCAN_CHUNK):
        if (person.email and (lead_email or "").strip().lower() == person.email) or document_mentions(payload, person):
            ids.add(delivery_id)
    return WebhookDelivery.objects.filter(pk__in=ids)


def person_texts(person: Person, lead_ids: list[str]):
    """The texts to and from the person (`sms_messages`): of one of their leads, or to or from their number."""
    by_number = pii.codec().blind_indexes(person.phone, pii.PHONE) if person.phone else []
    return SmsMessage.objects.filter(Q(lead_id__in=lead_ids) | Q(phone_bidx__in=by_number))
