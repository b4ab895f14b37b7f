"""Bulk actions on leads a broker selected in the list: queue, do-not-contact, consent links, a follow-up.

Each change of leads is ONE set-based statement in the broker's database context (row-level security applies):
the rows it may touch are the broker's scoped queryset (`Lead.objects.for_broker(...)`), compiled into the
statement, so a forgotten filter cannot widen it; the same statement records the `pipeline_events` rows of the
leads it changed (a CTE). Mails go out through a task (consent links: leads/tasks.py), never in the request.

Before changing anything, `bulk_selection` checks that every selected id is one of the broker's leads: one that
is not (another broker's, a made-up id) refuses the whole request (the view's 404), and nothing changes. Every
action returns a BulkOutcome: how many leads changed and, for the others, why they were skipped.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from django.db import connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django_q.tasks import async_task

from equity_connect.db import service_context
from equity_connect.events import lead_events_insert_sql
from security.fields import decrypt_stored, seal_note
from security.pii import EMAIL, PHONE, codec

from ..models import Lead
from ..selectors import LeadFilters, lead_list
from ..services import QUEUEABLE_STATUSES, LeadError
from ..statuses import NEVER_CONTACT_STATUSES, CampaignStatus
from ..suppressions.rules import SuppressionInvalid, SuppressionKind, SuppressionReason
from ..suppressions.services import suppression_import_rows, suppression_value_clean
from .services import NOTE_MAX

# The most leads one bulk action takes (a selection of "all matching" a broad filter is refused beyond it).
BULK_MAX = 10_000
CONSENT_LINKS_TASK = "leads.tasks.consent_links_bulk_task"
# One `follow_up_added` event per follow-up the bulk statement inserted (`added`), with its due date and note.
FOLLOW_UP_EVENTS = lead_events_insert_sql(
    "follow_up_added",
    source="added",
    lead_column="lead_id",
    broker_column="broker_id",
    data_sql="jsonb_build_object('follow_up', id, 'due_date', %s::text, 'note', %s::text, 'by', 'broker',"
    " 'bulk', true)",
    upload_sql="NULL",
)


class BulkSelectionNotFound(Exception):
    """A selected id is not one of the broker's leads (the view answers 404; nothing was changed)."""


@dataclass
class BulkOutcome:
    action: str
    selected: int
    changed: int = 0
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # reason -> [(lead id, name)]

    @property
    def skipped_count(self) -> int:
        return sum(len(leads) for leads in self.skipped.values())


def _ids_array(ids) -> RawSQL:
    # One array literal (each id parsed as a UUID first, so nothing else can get into it): psycopg's quoting of
    # a list, element by element, costs more than the query at 1,000 ids.
    literal = "{" + ",".join(str(pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk))) for pk in ids) + "}"
    return RawSQL('"leads"."id" = ANY(%s::uuid[])', (literal,), output_field=BooleanField())


def bulk_selection(*, broker, lead_ids=None, filters: LeadFilters | None = None) -> list[uuid.UUID]:
    """The selected leads' ids: `lead_ids` (each must be one of the broker's leads, else BulkSelectionNotFound),
    or every lead matching `filters` (the list's, search included). LeadError for none or more than BULK_MAX."""
    if filters is not None:
        ids = list(lead_list(broker=broker, filters=filters).values_list("id", flat=True)[: BULK_MAX + 1])
    else:
        try:
            wanted = list(dict.fromkeys(uuid.UUID(str(value)) for value in lead_ids or ()))
        except ValueError:
            raise BulkSelectionNotFound from None
        if len(wanted) > BULK_MAX:
            raise LeadError(f"Select at most {BULK_MAX:,} leads for one action.")
        # Tombstones of merged leads included: they are the broker's, and are skipped with a reason.
        found = set(Lead.objects.for_broker(broker).filter(_ids_array(wanted)).values_list("id", flat=True))
        if len(found) != len(wanted):
            raise BulkSelectionNotFound
        ids = wanted
    if not ids:
        raise LeadError("Select at least one lead.")
    if len(ids) > BULK_MAX:
        raise LeadError(f"More than {BULK_MAX:,} leads match: narrow the filter, or select leads one by one.")
    return ids


def _selected(broker, ids) -> QuerySet:
    return Lead.objects.for_broker(broker).filter(_ids_array(ids))


def _rows(broker, ids) -> list[dict]:
    """What the skip reasons are decided on, for each selected lead (e-mail and phone stay sealed: only whether
    there is one)."""
    return list(
        _selected(broker, ids)
        .annotate(
            has_email=RawSQL("coalesce(\"leads\".\"email\", '') <> ''", (), output_field=BooleanField()),
            email_suppressed=RawSQL('"leads"."suppressed_channels" ? \'email\'', (), output_field=BooleanField()),
        )
        .values(
            "id",
            "first_name",
            "last_name",
            "campaign_status",
            "consent_email",
            "email_verified",
            "merged_into_id",
            "has_email",
            "email_suppressed",
        )
    )


def _name(row) -> str:
    return " ".join(part for part in (row["first_name"], row["last_name"]) if part) or "(no name)"


def _outcome(action: str, rows: list[dict], changed_ids: Collection, reason_of) -> BulkOutcome:
    skipped: dict[str, list] = defaultdict(list)
    for row in rows:
        if row["id"] not in changed_ids:
            skipped[reason_of(row) or "changed by someone else meanwhile"].append((str(row["id"]), _name(row)))
    return BulkOutcome(action=action, selected=len(rows), changed=len(changed_ids), skipped=dict(skipped))


def _update_recording(
    queryset: QuerySet,
    *,
    set_sql: str,
    set_params: list,
    event_type: str,
    data_sql: str,
    data_params: list,
    returning: tuple[str, ...] = (),
) -> dict:
    """UPDATE the leads of `queryset` (compiled into the statement) and record one event per changed lead, in one
    statement. Returns {changed id: (its `returning` columns, as stored)}. `set_sql`, `data_sql` and `returning`
    are this module's own SQL, never input."""
    select_sql, select_params = queryset.values("id").query.sql_with_params()
    extra = "".join(f", leads.{column}" for column in returning)
    statement = f"""
WITH previous AS (
  SELECT l.id, l.campaign_status FROM leads l WHERE l.id IN ({select_sql}) FOR UPDATE
), changed AS (
  UPDATE leads SET {set_sql}, updated_at = now() FROM previous
   WHERE leads.id = previous.id
  RETURNING leads.id, leads.assigned_broker_id, previous.campaign_status AS previous_status{extra}
), recorded AS (
{lead_events_insert_sql(event_type, source="changed", data_sql=data_sql, upload_sql="NULL")}
)
SELECT id{"".join(f", {column}" for column in returning)} FROM changed"""
    with connection.cursor() as cursor:
        cursor.execute(statement, [*select_params, *set_params, *data_params])
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _queue_skip(row) -> str | None:
    status = row["campaign_status"]
    if row["merged_into_id"]:
        return "merged into another lead"
    if status in NEVER_CONTACT_STATUSES:
        return "marked do-not-contact, unsubscribed or bounced"
    if status == CampaignStatus.CONVERTED:
        return "already converted"
    if status in (CampaignStatus.QUEUED, CampaignStatus.ACTIVE):
        return "already queued or in a campaign"
    if status == CampaignStatus.REPLIED:
        return "replied: follow up in person"
    if status not in QUEUEABLE_STATUSES:
        return f"in status {status}"
    if not row["consent_email"]:
        return "no consent to e-mail"
    if not row["has_email"]:
        return "no e-mail address"
    if not row["email_verified"]:
        return "e-mail not verified"
    if row["email_suppressed"]:
        return "e-mail on the suppression list"
    return None


def bulk_queue(*, broker, lead_ids: list) -> BulkOutcome:
    """Queue the selected leads that may be (the rules of `lead_queue_blockers`) for the next campaign run, in one
    statement; records `lead_queued` for each."""
    with transaction.atomic():
        rows = _rows(broker, lead_ids)
        eligible = (
            _selected(broker, lead_ids)
            .live()
            .filter(campaign_status__in=QUEUEABLE_STATUSES, consent_email=True, email_verified=True)
            .exclude(suppressed_channels__has_key="email")
            .filter(RawSQL("coalesce(\"leads\".\"email\", '') <> ''", (), output_field=BooleanField()))
        )
        changed = _update_recording(
            eligible,
            set_sql="campaign_status = 'queued'",
            set_params=[],
            event_type="lead_queued",
            data_sql="jsonb_build_object('from', previous_status, 'by', 'broker', 'bulk', true)",
            data_params=[],
        )
    return _outcome("queue", rows, changed, _queue_skip)


def bulk_do_not_contact(*, broker, lead_ids: list, reason: str, user=None) -> BulkOutcome:
    """Mark the selected leads do-not-contact with `reason`, in one statement (records `lead_do_not_contact` for
    each), and put their e-mails and phones on the suppression list as a customer request, in one import (every
    other lead with that contact, now and in future uploads, is bound too). Leads already marked are skipped."""
    reason = (reason or "").strip()[:1000]
    if not reason:
        raise LeadError("Say why these leads must not be contacted.")
    with transaction.atomic():
        rows = _rows(broker, lead_ids)
        eligible = _selected(broker, lead_ids).live().exclude(campaign_status=CampaignStatus.DO_NOT_CONTACT)
        changed = _update_recording(
            eligible,
            set_sql="campaign_status = 'do_not_contact', do_not_contact_reason = %s",
            set_params=[reason],
            event_type="lead_do_not_contact",
            data_sql="jsonb_build_object('from', previous_status, 'reason', %s::text, 'by', 'broker', 'bulk', true)",
            data_params=[seal_note(reason)],
            returning=("email", "phone"),
        )
        if changed:
            _suppress_contacts(changed.values(), user=user)
    return _outcome(
        "do_not_contact",
        rows,
        changed,
        lambda row: "merged into another lead" if row["merged_into_id"] else "already marked do-not-contact",
    )


def _suppress_contacts(contacts, *, user) -> None:
    """The leads' e-mails and phones (`contacts`: (e-mail, phone) as stored) on the suppression list (customer
    request: every channel), in one import."""
    pii = codec()
    values = set()
    for email, phone in contacts:
        for kind, stored, pii_kind in ((SuppressionKind.EMAIL, email, EMAIL), (SuppressionKind.PHONE, phone, PHONE)):
            value = decrypt_stored(stored, pii_kind, with_codec=pii)
            if value:
                # A legacy value the list cannot hold is left out: the lead's status stops it.
                with contextlib.suppress(SuppressionInvalid):
                    values.add((kind, suppression_value_clean(kind, value)))
    if values:
        rows = [{"kind": kind, "value": value, "reason": SuppressionReason.CUSTOMER_REQUEST} for kind, value in values]
        # The list and the other leads it marks are beyond a broker's rows (as in suppression_add_for_lead).
        with service_context():
            suppression_import_rows(rows=rows, source="portal_bulk_do_not_contact", user=user, by="broker")


def _consent_skip(row) -> str | None:
    if row["merged_into_id"]:
        return "merged into another lead"
    if not row["has_email"]:
        return "no e-mail address"
    if row["campaign_status"] in NEVER_CONTACT_STATUSES or row["email_suppressed"]:
        return "e-mail unsubscribed, bounced or do-not-contact"
    if not row["email_verified"]:
        return "e-mail not verified (a typed-in or unconfirmed address gets no consent link)"
    if row["consent_email"]:
        return "already consented to e-mail"
    return None


def bulk_consent_links(*, broker, lead_ids: list, user=None) -> BulkOutcome:
    """Ask for a consent link to be e-mailed to each selected lead that may get one. Nothing is sent here: once
    the transaction commits, a task asks for each through `consent_link_send` (the lead's contact window, the
    daily limit, the suppression list: leads/consent/services.py), which records `consent_link_requested`.
    `changed` counts the links asked for."""
    rows = _rows(broker, lead_ids)
    wanted = [str(row["id"]) for row in rows if _consent_skip(row) is None]
    if wanted:
        args = (str(getattr(broker, "pk", broker)), getattr(user, "pk", None), wanted)
        transaction.on_commit(
            partial(async_task, CONSENT_LINKS_TASK, *args, task_name="bulk consent links", group="consent")
        )
    return _outcome("consent_links", rows, {uuid.UUID(pk) for pk in wanted}, _consent_skip)


def bulk_follow_up(*, broker, lead_ids: list, due_date: date, note: str = "") -> BulkOutcome:
    """Add the same follow-up (due date, note) to each selected live lead, in one statement; records
    `follow_up_added` for each."""
    if due_date is None:
        raise LeadError("Give the follow-up's due date.")
    note = (note or "").strip()[:NOTE_MAX]
    with transaction.atomic():
        rows = _rows(broker, lead_ids)
        select_sql, select_params = (
            _selected(broker, lead_ids).live().values("id", "assigned_broker_id").query.sql_with_params()
        )
        statement = f"""
WITH added AS (
  INSERT INTO lead_follow_ups (lead_id, broker_id, due_date, note, created_at)
  SELECT s.id, s.assigned_broker_id, %s, %s, now() FROM ({select_sql}) s
  RETURNING id, lead_id, broker_id
)
{FOLLOW_UP_EVENTS}
RETURNING lead_id"""
        with connection.cursor() as cursor:
            cursor.execute(statement, [due_date, note, *select_params, due_date.isoformat(), seal_note(note)])
            changed = {row[0] for row in cursor.fetchall()}
    return _outcome("follow_up", rows, changed, lambda row: "merged into another lead")
