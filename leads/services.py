"""Write paths for leads. Each runs in a transaction with the caller's database context."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.db import connection, models, transaction
from django_q.tasks import async_task

from equity_connect.db import service_context
from equity_connect.events import lead_events_insert_sql, record_event
from security.fields import seal_note
from security.models import Broker

from .models import Lead
from .statuses import NEVER_CONTACT_STATUSES, CampaignStatus
from .suppressions.rules import SuppressionReason
from .suppressions.services import suppression_add_for_lead

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


def lead_verified_record(*, lead: Lead, before: dict[str, bool], by: str | None, via: str) -> list[str]:
    """Record `lead_verified` when a staff change or a merge turned the lead's `email_verified` or
    `phone_verified` on (`before`: the flags as they were). Returns the channels that became verified."""
    channels = [
        channel
        for channel in ("email", "phone")
        if getattr(lead, f"{channel}_verified") and not before.get(f"{channel}_verified", False)
    ]
    if channels:
        record_event(
            "lead_verified",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={"channels": channels, "by": by, "via": via},
        )
    return channels


# --- Portal actions (consent: leads/consent/) ----------------------------------------------------------------------
# Each service takes the lead (already fetched through the broker's scoped queryset), re-reads it
# locked inside its transaction, changes it, and records one `pipeline_events` row for the timeline.
# Under a broker's context the event carries that broker's id (the RLS WITH CHECK requires it).

QUEUEABLE_STATUSES = (CampaignStatus.NEW, CampaignStatus.PAUSED)
STOP_SEQUENCES_TASK = "pipeline.tasks.instantly_sequences_stop"


class LeadError(Exception):
    """A lead action that cannot be done; the message is safe to show to the broker."""


def locked_lead(lead: Lead, broker) -> Lead:
    """The lead re-read and locked in the caller's transaction, through the broker's scope (None: any lead)."""
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
    # The campaign is e-mail: it needs consent to e-mail and a verified e-mail (a verified phone is no help).
    if not lead.consent_email:
        reasons.append("The lead has not given consent to e-mail (send them a consent link).")
    if not (lead.email or "").strip():
        reasons.append("The lead has no email address.")
    elif not lead.email_verified:
        reasons.append("The email is not verified.")
    return reasons


def lead_queue_for_campaign(*, lead: Lead, broker) -> Lead:
    """Set `campaign_status='queued'` so the feeder picks the lead up; records `lead_queued`.

    Raises LeadError (with every reason) when the lead is not eligible."""
    with transaction.atomic():
        lead = locked_lead(lead, broker)
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


def lead_mark_do_not_contact(*, lead: Lead, broker, reason: str, user=None) -> Lead:
    """Set `campaign_status='do_not_contact'` with a reason (required); records `lead_do_not_contact`. The
    lead's e-mail and phone go on the suppression list as a customer request (every channel), so every other
    lead with them, now and in future uploads, is never contacted either."""
    reason = (reason or "").strip()
    if not reason:
        raise LeadError("Say why the lead must not be contacted.")
    with transaction.atomic():
        lead = locked_lead(lead, broker)
        previous = lead.campaign_status
        lead.campaign_status = CampaignStatus.DO_NOT_CONTACT
        lead.do_not_contact_reason = reason[:1000]
        lead.save(update_fields=["campaign_status", "do_not_contact_reason", "updated_at"])
        record_event(
            "lead_do_not_contact",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={
                "from": previous,
                "reason": seal_note(lead.do_not_contact_reason),
                "by": "broker" if broker else "staff",
            },
        )
        suppression_add_for_lead(
            lead=lead,
            reason=SuppressionReason.CUSTOMER_REQUEST,
            source="portal_do_not_contact" if broker is not None else "admin_do_not_contact",
            user=user,
            by="broker" if broker is not None else "",
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
    """Record a contact outcome. An appointment records `appointment_booked` (the funnel's booked step; the
    portal then shows the lead as "Appointment booked", leads/workday/selectors.py) and, when the lead is in an
    Instantly campaign, enqueues the task that stops its e-mail sequence once the transaction commits;
    a conversion also sets `campaign_status='converted'`; the rest record `lead_outcome`."""
    if outcome not in Outcome.values:
        raise LeadError("Choose an outcome.")
    if outcome == Outcome.APPOINTMENT and appointment_at is None:
        raise LeadError("Give the appointment's date and time.")
    data = {"outcome": outcome, "note": seal_note((note or "").strip()[:2000]), "by": "broker"}
    if appointment_at is not None:
        data["appointment_at"] = appointment_at.isoformat()
    with transaction.atomic():
        lead = locked_lead(lead, broker)
        if outcome == Outcome.CONVERTED and lead.campaign_status != CampaignStatus.CONVERTED:
            data["from"] = lead.campaign_status
            lead.campaign_status = CampaignStatus.CONVERTED
            lead.save(update_fields=["campaign_status", "updated_at"])
        event_type = "appointment_booked" if outcome == Outcome.APPOINTMENT else "lead_outcome"
        record_event(event_type, lead_id=lead.pk, broker_id=lead.assigned_broker_id, data=data)
        if outcome == Outcome.APPOINTMENT and lead.instantly_lead_id:
            # The lead is talking to the broker now: their e-mail sequence must send nothing more.
            sequences = [[str(lead.pk), lead.instantly_lead_id]]
            transaction.on_commit(partial(_sequences_stop_enqueue, sequences, "appointment booked"))
    return lead


def _sequences_stop_enqueue(sequences: list[list[str]], reason: str) -> None:
    # By the task's dotted name (leads never imports pipeline): the pipeline's Instantly client stops the
    # sequences in the task cluster, with its retries and a DLQ review row when Instantly cannot be reached.
    async_task(STOP_SEQUENCES_TASK, sequences, reason, task_name="stop sequences", group="instantly")


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
