"""The lead's columns, grouped as the code needs them, in one place: what ingestion writes and how a
re-sent lead merges each column, and what the exports show. The seed-compatible `upsert_lead()` takes
`SEED_UPSERT_PARAMETERS` (INGESTED without the blind indexes, which only Python can compute) as its parameters
(a test compares its signature with this list)."""

from __future__ import annotations

# Dedupe keys, in order of trust.
KEYS = ("mak", "apn", "addr_hash")

# How a second record of the same property merges into the first (in a file: earliest line first; into an
# existing lead: the lead is "first"):
# - the first non-empty value wins (contact data and property facts are never overwritten);
CONTACT = ("first_name", "last_name", "email", "phone")
# The keyed blind indexes of the e-mail and phone (security/pii.py), computed where rows are normalised. Each is
# NULL exactly when its e-mail or phone is empty, so "the first non-empty value wins" keeps them with their value.
CONTACT_INDEXES = ("email_bidx", "email_domain_bidx", "phone_bidx", "phone_last4_bidx")
INDEXED_WITH = {
    "email_bidx": "email",
    "email_domain_bidx": "email",
    "phone_bidx": "phone",
    "phone_last4_bidx": "phone",
}
ADDRESS = ("property_address", "property_city", "property_state", "property_zip")
# The owner's mailing address (an absentee owner's state decides their contact window).
MAILING = ("mailing_address", "mailing_city", "mailing_state", "mailing_zip")
KEEP_FIRST = (
    *CONTACT,
    *CONTACT_INDEXES,
    *ADDRESS,
    *MAILING,
    "owner2_name",
    "property_type",
    "age",
    "owner_occupied",
    *KEYS,
    "assigned_broker_id",
)
# - the newest non-empty value wins (valuations change);
KEEP_NEWEST = ("property_value", "estimated_equity")
# - verified flags are OR-ed, verification codes unioned, the skip-trace payload merged.
FLAGS = ("email_verified", "phone_verified")
CODES = ("email_verification_codes", "phone_verification_codes")
PAYLOAD = ("melissa_payload",)

# A contact point a broker typed (leads/contact_edit.py) stays unconfirmed until a partner file brings the same value:
# the merge clears the flag when the file's blind index equals the lead's (pipeline/ingest/sql/write.py); a new owner's
# data replaces the typed value and clears it too.
UNCONFIRMED = {"email_unconfirmed": "email_bidx", "phone_unconfirmed": "phone_bidx"}

# Every column an upload writes into `leads` (plus `lead_score`, `score_breakdown`, `source`).
INGESTED = KEEP_FIRST + KEEP_NEWEST + FLAGS + CODES + PAYLOAD
# The seed-compatible `upsert_lead()`'s parameters: the database holds no key, so its rows get their blind
# indexes from the sweep (leads/contact_indexes.py).
SEED_UPSERT_PARAMETERS = tuple(column for column in INGESTED if column not in CONTACT_INDEXES)

# What a new owner on a known parcel resets, beside the contact data (pipeline/ingest/sql/write.py): the old
# owner's consent and their place in a campaign do not pass to the new owner.
OWNER_RESET = (
    "consent",
    "consented_at",
    "consent_method",
    "campaign_status",
    "added_to_campaign_at",
    "instantly_lead_id",
    "current_sequence_step",
    "last_reply_at",
    # Not a reset but a stamp: the lead has a new owner since then (an older address suppression no longer binds).
    "owner_changed_at",
)

# The broker portal's CSV export (a broker's own leads).
PORTAL_EXPORT = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "property_address",
    "property_city",
    "property_state",
    "property_zip",
    "property_value",
    "estimated_equity",
    "property_type",
    "age",
    "owner_occupied",
    "apn",
    "lead_score",
    "campaign_status",
    "email_verified",
    "phone_verified",
    "consent",
    "consent_email",
    "consent_sms",
    "consent_phone",
    "consented_at",
    "consent_method",
    "added_to_campaign_at",
    "last_reply_at",
    "created_at",
)

# The staff export in the admin: the portal's columns with the keys, the broker and the source.
STAFF_EXPORT = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "property_address",
    "property_city",
    "property_state",
    "property_zip",
    "property_value",
    "estimated_equity",
    "property_type",
    "age",
    "owner_occupied",
    "assigned_broker_email",
    "lead_score",
    "campaign_status",
    "email_verified",
    "phone_verified",
    "consent",
    "consent_email",
    "consent_sms",
    "consent_phone",
    "consented_at",
    "consent_method",
    *KEYS,
    "added_to_campaign_at",
    "last_reply_at",
    "source",
    "created_at",
    "updated_at",
)
