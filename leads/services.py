"""Write paths for leads. Each runs in a transaction with the caller's database context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, models, transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import lead_events_insert_sql, record_event
from security.consent_tokens import ConsentTokenInvalid, consent_token_sign, consent_token_verify, consent_url
from security.models import Broker

from .models import ConsentToken, Lead, LeadConsentAudit
from .statuses import NEVER_CONTACT_STATUSES, CampaignStatus

# The seed's Phase 5.1 mapping, verbatim: legacy `status` text -> `campaign_status`.
BACKFILL_CAMPAIGN_STATUS_SQL = """
UPDATE leads
SET campaign_status = CASE
  WHEN status = 'new' THEN 'new'::campaign_status
  WHEN status = 'contacted' THEN 'active'::campaign_status
  WHEN status = 'replied' THEN 'replied'::campaign_status
  WHEN status = 'qualified' THEN 'active'::campaign_status
  WHEN status IN ('appointment_set', 'showed', 'application', 'funded') THEN 'converted'::campaign_status
  WHEN status = 'closed_lost' THEN 'do_not_contact'::campaign_status
  ELSE 'new'::campaign_status
END
WHERE campaign_status IS NULL
RETURNING campaign_status
"""

# The seed's Phase 5.2, verbatim.
INIT_PHONE_VERIFIED_SQL = """
UPDATE leads
SET phone_verified = TRUE
WHERE phone IS NOT NULL
  AND phone != ''
  AND phone_verified = FALSE
"""
INIT_EMAIL_VERIFIED_SQL = """
UPDATE leads
SET email_verified = TRUE
WHERE email IS NOT NULL
  AND email != ''
  AND email_verified = FALSE
"""


def campaign_status_backfill() -> dict[str, int]:
    """Set `campaign_status` from the legacy `status` where it is NULL (idempotent).

    Returns how many leads got each status."""
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BACKFILL_CAMPAIGN_STATUS_SQL)
        for (status,) in cursor.fetchall():
            counts[status] = counts.get(status, 0) + 1
    return counts


# Leads already handed to a campaign: marking their contacts verified now would change who is e-mailed.
LEADS_IN_CAMPAIGNS_SQL = "SELECT count(*) FROM leads WHERE added_to_campaign_at IS NOT NULL"
# What each seed statement would change: its own WHERE clause, counted.
INIT_VERIFIED_PREVIEW_SQL = {
    channel: "SELECT count(*) FROM leads " + statement[statement.index("WHERE") :]
    for channel, statement in (("phone", INIT_PHONE_VERIFIED_SQL), ("email", INIT_EMAIL_VERIFIED_SQL))
}


class VerificationFlagsRefused(Exception):
    """The seed's step 5.2 would change leads that are already in campaigns; the message says how many."""


def verification_flags_init(*, dry_run: bool = False, force: bool = False) -> dict[str, int]:
    """The seed's Phase 5.2: mark phone/email verified wherever a phone/email exists (idempotent).

    The seed means it for a database before its first campaign: it trusts every stored contact. On a database
    with leads in campaigns it raises VerificationFlagsRefused unless `force`. `dry_run` changes nothing.
    Returns {"phone_verified", "email_verified", "in_campaigns"}: the leads changed (or that would be). Each
    lead changed gets a `lead_verified` event naming the channel."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LEADS_IN_CAMPAIGNS_SQL)
        counts = {"in_campaigns": cursor.fetchone()[0]}
        if dry_run:
            for channel, preview in INIT_VERIFIED_PREVIEW_SQL.items():
                cursor.execute(preview)
                counts[f"{channel}_verified"] = cursor.fetchone()[0]
            return counts
        if counts["in_campaigns"] and not force:
            raise VerificationFlagsRefused(
                f"{counts['in_campaigns']} lead(s) are already in campaigns: marking every stored contact "
                "verified now would change who is e-mailed. Check with --dry-run, then re-run with --force."
            )
        for channel, statement in (("phone", INIT_PHONE_VERIFIED_SQL), ("email", INIT_EMAIL_VERIFIED_SQL)):
            cursor.execute(
                f"WITH changed AS ({statement.strip()}\nRETURNING id, assigned_broker_id)\n"
                + lead_events_insert_sql(
                    "lead_verified",
                    source="changed",
                    data_sql=f'\'{{"channels": ["{channel}"], "by": "init_verification_flags"}}\'::jsonb',
                ),
                {"upload": None},
            )
            counts[f"{channel}_verified"] = cursor.rowcount
    return counts


# --- Portal actions and consent ----------------------------------------------------------------------
# Each service takes the lead (already fetched through the broker's scoped queryset), re-reads it
# locked inside its transaction, changes it, and records one `pipeline_events` row for the timeline.
# Under a broker's context the event carries that broker's id (the RLS WITH CHECK requires it).

QUEUEABLE_STATUSES = (CampaignStatus.NEW, CampaignStatus.PAUSED)


class LeadError(Exception):
    """A lead action that cannot be done; the message is safe to show to the broker."""


class ConsentLinkError(Exception):
    """A consent link that cannot be used. `reason` is one of: invalid, expired, used."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _locked(lead: Lead, broker) -> Lead:
    # Never a tombstone (a lead merged into another): its survivor is the lead to act on.
    queryset = (Lead.objects.for_broker(broker) if broker is not None else Lead.objects.all()).live()
    try:
        return queryset.select_for_update().get(pk=lead.pk)
    except Lead.DoesNotExist:
        raise LeadError("This lead is not one of your leads.") from None


def lead_queue_blockers(*, lead: Lead) -> list[str]:
    """Why the lead cannot be queued for a campaign (an empty list: it can)."""
    reasons = []
    status = lead.campaign_status
    if status in NEVER_CONTACT_STATUSES:
        label = CampaignStatus(status).label.lower()
        reasons.append(f"The lead is marked {label}: it must never be emailed again.")
    elif status == CampaignStatus.CONVERTED:
        reasons.append("The lead has already converted.")
    elif status in (CampaignStatus.QUEUED, CampaignStatus.ACTIVE):
        reasons.append(f"The lead is already {status} for a campaign.")
    elif status == CampaignStatus.REPLIED:
        reasons.append("The lead has replied: follow up in person rather than re-queueing.")
    elif status is not None and status not in QUEUEABLE_STATUSES:
        reasons.append(f"A lead in status {status} cannot be queued.")
    if not lead.consent:
        reasons.append("The lead has not given consent (send them a consent link).")
    if not (lead.email_verified or lead.phone_verified):
        reasons.append("Neither the email nor the phone is verified.")
    if not (lead.email or "").strip():
        reasons.append("The lead has no email address.")
    return reasons


def lead_queue_for_campaign(*, lead: Lead, broker) -> Lead:
    """Set `campaign_status='queued'` so the feeder picks the lead up; records `lead_queued`.

    Raises LeadError (with every reason) when the lead is not eligible."""
    with transaction.atomic():
        lead = _locked(lead, broker)
        reasons = lead_queue_blockers(lead=lead)
        if reasons:
            raise LeadError(" ".join(reasons))
        previous = lead.campaign_status
        lead.campaign_status = CampaignStatus.QUEUED
        lead.save(update_fields=["campaign_status", "updated_at"])
        record_event(
            "lead_queued", lead_id=lead.pk, broker_id=lead.assigned_broker_id, data={"from": previous, "by": "broker"}
        )
    return lead


def lead_mark_do_not_contact(*, lead: Lead, broker, reason: str) -> Lead:
    """Set `campaign_status='do_not_contact'` with a reason (required); records `lead_do_not_contact`."""
    reason = (reason or "").strip()
    if not reason:
        raise LeadError("Say why the lead must not be contacted.")
    with transaction.atomic():
        lead = _locked(lead, broker)
        previous = lead.campaign_status
        lead.campaign_status = CampaignStatus.DO_NOT_CONTACT
        lead.do_not_contact_reason = reason[:1000]
        lead.save(update_fields=["campaign_status", "do_not_contact_reason", "updated_at"])
        record_event(
            "lead_do_not_contact",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={"from": previous, "reason": lead.do_not_contact_reason, "by": "broker"},
        )
    return lead


class Outcome(models.TextChoices):
    APPOINTMENT = "appointment", "Appointment booked"
    CONVERTED = "converted", "Converted (loan in progress)"
    CALLBACK = "callback", "Asked for a call back"
    NO_ANSWER = "no_answer", "No answer"
    NOT_INTERESTED = "not_interested", "Not interested"
    WRONG_PERSON = "wrong_person", "Wrong person"
    OTHER = "other", "Other"


def lead_record_outcome(
    *, lead: Lead, broker, outcome: str, note: str = "", appointment_at: datetime | None = None
) -> Lead:
    """Record a contact outcome. An appointment records `appointment_booked` (the funnel's booked step);
    a conversion also sets `campaign_status='converted'`; the rest record `lead_outcome`."""
    if outcome not in Outcome.values:
        raise LeadError("Choose an outcome.")
    if outcome == Outcome.APPOINTMENT and appointment_at is None:
        raise LeadError("Give the appointment's date and time.")
    data = {"outcome": outcome, "note": (note or "").strip()[:2000], "by": "broker"}
    if appointment_at is not None:
        data["appointment_at"] = appointment_at.isoformat()
    with transaction.atomic():
        lead = _locked(lead, broker)
        if outcome == Outcome.CONVERTED and lead.campaign_status != CampaignStatus.CONVERTED:
            data["from"] = lead.campaign_status
            lead.campaign_status = CampaignStatus.CONVERTED
            lead.save(update_fields=["campaign_status", "updated_at"])
        event_type = "appointment_booked" if outcome == Outcome.APPOINTMENT else "lead_outcome"
        record_event(event_type, lead_id=lead.pk, broker_id=lead.assigned_broker_id, data=data)
    return lead


def consent_link_create(*, lead: Lead, broker=None) -> str:
    """Create a signed, single-use consent link for the lead and return its URL.

    Stores `sha256(nonce)` and the expiry in `consent_tokens`; records `consent_link_created`. The URL
    is returned once and never stored."""
    broker_id = getattr(broker, "pk", broker) or lead.assigned_broker_id
    with transaction.atomic():
        lead = _locked(lead, broker)
        signed = consent_token_sign(lead_id=lead.pk, broker_id=broker_id)
        ConsentToken.objects.create(
            lead=lead, broker_id=broker_id, token_hash=signed.token_hash, expires_at=signed.expires_at
        )
        record_event(
            "consent_link_created",
            lead_id=lead.pk,
            broker_id=broker_id,
            data={"expires_at": signed.expires_at, "token_hash_prefix": signed.token_hash[:12]},
        )
    return consent_url(signed.token)


@dataclass(frozen=True)
class ConsentRequest:
    """Where a consent form submission came from (for the audit row)."""

    ip_address: str | None = None
    user_agent: str = ""
    utm: dict[str, str] = field(default_factory=dict)


UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def _token_rows(claims):
    """The stored row of a signed token: its nonce hash, lead and broker must all match the signed claims."""
    return ConsentToken.objects.filter(
        token_hash=claims.token_hash, lead_id=claims.lead_id, broker_id=claims.broker_id
    )


def _token_state(claims) -> str | None:
    """Why a token cannot be used now (invalid, used, expired), or None if it can."""
    token = _token_rows(claims).first()
    if token is None:
        return "invalid"
    if token.used_at is not None:
        return "used"
    if token.expires_at <= timezone.now():
        return "expired"
    return None


def consent_lead_for_token(*, token: str) -> Lead:
    """The lead a usable consent token is for (the public page's GET). Raises ConsentLinkError.

    Runs with no request context: the signature is checked first, then a narrow service context reads
    only this token's row and its lead."""
    try:
        claims = consent_token_verify(token)
    except ConsentTokenInvalid:
        raise ConsentLinkError("invalid") from None
    with service_context():
        problem = _token_state(claims)
        if problem:
            raise ConsentLinkError(problem)
        return Lead.objects.select_related("assigned_broker").get(pk=claims.lead_id)


def consent_record(*, token: str, consent: bool, request: ConsentRequest) -> Lead:
    """Record the lead's answer on the public form and spend the token (once, atomically).

    consent=True: `consent`, `consented_at`, `consent_method='form'`; `consent_given` event.
    consent=False ("do not contact me"): `campaign_status='do_not_contact'`, consent withdrawn;
    `consent_refused` event. Both write a `lead_consent_audit` row (IP, user agent, token hash, UTM).
    An invalid, expired or used token raises ConsentLinkError and changes nothing."""
    try:
        claims = consent_token_verify(token)
    except ConsentTokenInvalid:
        raise ConsentLinkError("invalid") from None
    now = timezone.now()
    with service_context():
        # The claim is one UPDATE: of two concurrent submissions the second waits for the first's row
        # lock, then finds used_at set and updates nothing.
        claimed = _token_rows(claims).filter(used_at__isnull=True, expires_at__gt=now).update(used_at=now)
        if claimed != 1:
            raise ConsentLinkError(_token_state(claims) or "used")
        lead = Lead.objects.select_for_update().get(pk=claims.lead_id)
        fields = ["consent", "consent_method", "updated_at"]
        if consent:
            lead.consent, lead.consented_at, lead.consent_method = True, now, "form"
            fields.append("consented_at")
        else:
            lead.consent, lead.consent_method = False, "form"
            lead.campaign_status = CampaignStatus.DO_NOT_CONTACT
            lead.do_not_contact_reason = "The lead chose 'do not contact me' on the consent form."
            fields += ["campaign_status", "do_not_contact_reason"]
        lead.save(update_fields=fields)
        utm = {name: (request.utm.get(name) or "")[:200] for name in UTM_FIELDS}
        LeadConsentAudit.objects.create(
            lead=lead,
            consent=consent,
            method="form",
            ip_address=request.ip_address,
            user_agent=(request.user_agent or "")[:1000],
            token_hash=claims.token_hash,
            **utm,
        )
        record_event(
            "consent_given" if consent else "consent_refused",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={"method": "form", **{k: v for k, v in utm.items() if v}},
        )
    return lead


def login_lockout_record(*, username: str, ip_address: str | None) -> None:
    """Record `login_locked_out` for staff (django-axes keeps the attempts themselves)."""
    with service_context():
        broker_id = Broker.objects.filter(email__iexact=username or "").values_list("id", flat=True).first()
        record_event(
            "login_locked_out",
            broker_id=broker_id,
            status="failure",
            data={"username": (username or "")[:254], "ip_address": ip_address},
        )
