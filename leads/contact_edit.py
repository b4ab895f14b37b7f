"""A broker edits a lead's contact details in the portal: e-mail, phone, mailing address.

What a broker types is unverified. A changed e-mail or phone is stored encrypted with its blind indexes (the
lead's pre_save receiver, leads/contact_indexes.py), loses the old value's verification, and is marked
unconfirmed (`email_unconfirmed` / `phone_unconfirmed`): no consent link goes to it (leads/consent/services.py)
and the lead is not fed (`mv_contactable_leads`, `Lead.objects.contactable()`) until a partner file brings the
same value (the ingestion's merge, pipeline/ingest/sql/write.py) or staff verify it. Otherwise a broker could
route a consent link to an address of their own and answer it. The change goes on the timeline as one
`lead_contact_changed` event whose note (old → new) and old values are sealed like every note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from equity_connect.db import service_context
from equity_connect.events import record_event
from security.fields import seal_note

from .compliance.zones import STATE_ZONES
from .contact_indexes import normalised_phone
from .models import Lead
from .services import LeadError, locked_lead
from .suppressions.services import leads_marks_refresh_for

MAILING_FIELDS = ("mailing_address", "mailing_city", "mailing_state", "mailing_zip")
FIELD_WORDS = {
    "email": "E-mail",
    "phone": "Phone",
    "mailing_address": "Mailing address",
    "mailing_city": "Mailing city",
    "mailing_state": "Mailing state",
    "mailing_zip": "Mailing ZIP",
}


@dataclass(frozen=True)
class ContactChange:
    """What `lead_contact_update` changed: the fields, by name (empty: nothing differed)."""

    lead: Lead
    fields: tuple[str, ...]


def contact_email_clean(value: str | None) -> str:
    """A typed e-mail address as the ingestion stores it (trimmed, lower case), or "" for none."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        raise LeadError("Enter a valid e-mail address.") from None
    return value


def contact_phone_clean(value: str | None) -> str:
    """A typed phone number as the ingestion stores it (E.164), or "" for none."""
    value = (value or "").strip()
    if not value:
        return ""
    phone = normalised_phone(value)
    if phone is None:
        raise LeadError("Enter a valid phone number, e.g. (415) 555-0199.")
    return phone


def _mailing_clean(values: dict) -> dict:
    cleaned = {name: " ".join((values.get(name) or "").split())[:200] for name in MAILING_FIELDS}
    cleaned["mailing_state"] = cleaned["mailing_state"].upper()
    if cleaned["mailing_state"] and cleaned["mailing_state"] not in STATE_ZONES:
        raise LeadError("Enter the mailing state as its two-letter code, e.g. CA.")
    zip_code = cleaned["mailing_zip"]
    if zip_code and not (
        (len(zip_code) == 5 and zip_code.isdigit())
        or (len(zip_code) == 10 and zip_code[5] == "-" and (zip_code[:5] + zip_code[6:]).isdigit())
    ):
        raise LeadError("Enter the mailing ZIP as 5 digits or ZIP+4 (12345-6789).")
    return cleaned


def lead_contact_update(*, lead: Lead, broker, values: dict, user=None) -> ContactChange:
    """Change the lead's e-mail, phone and mailing address to `values` (keys: email, phone, mailing_address,
    mailing_city, mailing_state, mailing_zip; a missing key keeps the field as it is).

    A changed e-mail or phone: stored encrypted with new blind indexes, not verified, its verification codes
    dropped, marked unconfirmed (an emptied one is simply gone), and the lead's suppression marks recomputed for
    the new value. Records one `lead_contact_changed` event (the fields; the old → new note and the old values
    sealed). Raises LeadError (safe to show) for a value that is not valid; changes nothing when nothing differs."""
    wanted: dict[str, str] = {}
    if "email" in values:
        wanted["email"] = contact_email_clean(values["email"])
    if "phone" in values:
        wanted["phone"] = contact_phone_clean(values["phone"])
    if any(name in values for name in MAILING_FIELDS):
        mailing = _mailing_clean(values)
        wanted.update({name: mailing[name] for name in MAILING_FIELDS if name in values})
    with transaction.atomic():
        lead = locked_lead(lead, broker)
        old = {name: getattr(lead, name) or "" for name in wanted}
        changed = tuple(name for name in wanted if wanted[name] != old[name])
        if not changed:
            return ContactChange(lead=lead, fields=())
        update_fields = [*changed, "updated_at"]
        for name in changed:
            setattr(lead, name, wanted[name] or None)
        for point in ("email", "phone"):
            if point in changed:
                setattr(lead, f"{point}_verified", False)
                setattr(lead, f"{point}_verification_codes", [])
                setattr(lead, f"{point}_unconfirmed", bool(wanted[point]))
                update_fields += [f"{point}_verified", f"{point}_verification_codes", f"{point}_unconfirmed"]
        if "email" in changed:
            update_fields += ["email_bidx", "email_domain_bidx"]  # set by the pre_save receiver
        if "phone" in changed:
            update_fields += ["phone_bidx", "phone_last4_bidx"]
        lead.save(update_fields=update_fields)
        note = "; ".join(
            f"{FIELD_WORDS[name]}: {old[name] or '(none)'} → {wanted[name] or '(none)'}" for name in changed
        )
        record_event(
            "lead_contact_changed",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={
                "fields": list(changed),
                "note": seal_note(note),
                "old": seal_note(json.dumps({name: old[name] for name in changed})),
                "unconfirmed": [point for point in ("email", "phone") if point in changed and wanted[point]],
                "by": "broker" if broker is not None else "staff",
                "user": user.get_username() if user is not None else None,
            },
        )
        if "email" in changed or "phone" in changed:
            # The suppression list is beyond a broker's rows: the service's own context, in this transaction.
            with service_context():
                leads_marks_refresh_for(lead_ids=[lead.pk])
    return ContactChange(lead=lead, fields=changed)


def lead_contact_confirm(*, lead: Lead, channel: str, by: str, user=None) -> Lead:
    """Confirm a broker-typed e-mail or phone (`channel`) by a verification outside the portal (staff, with a
    verification code's result in hand): clears `<channel>_unconfirmed` and records `lead_verified`. Staff only:
    needs a context that sees the lead."""
    if channel not in ("email", "phone"):
        raise LeadError("Choose e-mail or phone.")
    with transaction.atomic():
        lead = locked_lead(lead, None)
        if not getattr(lead, f"{channel}_unconfirmed"):
            return lead
        setattr(lead, f"{channel}_unconfirmed", False)
        setattr(lead, f"{channel}_verified", True)
        lead.save(update_fields=[f"{channel}_unconfirmed", f"{channel}_verified", "updated_at"])
        record_event(
            "lead_verified",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={"channels": [channel], "by": by, "via": "contact_confirm", "user": getattr(user, "pk", None)},
        )
    return lead
