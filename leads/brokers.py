"""Offboarding a broker: deactivate them and hand every lead they hold to another broker, with the reason on each
lead's timeline.

It lives in `leads` rather than beside `Broker` in `security`, because it rewrites leads (`security` never imports
`leads`). The admin's *Offboard* action (leads/admin_brokers.py) is its one caller.

The reassignment is set-based whatever the broker's book: one statement moves the leads and, in the same
statement, records one `lead_reassigned` event per moved lead (`equity_connect.events.lead_events_insert_sql`).
A deactivated broker cannot log in to the portal (security/middleware.py reads `Broker.objects.active()`) and the
feeder skips any lead still assigned to them (pipeline/campaigns/feeder.py and `mv_contactable_leads`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from equity_connect.events import lead_events_insert_sql, record_event
from security.fields import seal_note
from security.models import Broker, PartnerKey

from .models import Lead

REASON_MAX_LENGTH = 500


class BrokerOffboardError(Exception):
    """An offboarding that cannot be done; the message is safe to show."""


@dataclass(frozen=True)
class OffboardPreview:
    broker: Broker
    leads: int
    partner_keys: list[str]  # keys whose default broker this is: their uploads would land on an inactive broker


@dataclass(frozen=True)
class OffboardResult:
    broker: Broker
    to_broker: Broker | None
    leads_moved: int


# One statement: the leads move, and each moved lead gets its `lead_reassigned` event (broker id: the new broker,
# whose timeline and RLS it belongs to). The reason is sealed once in Python (a free-text note is encrypted on the
# event trail, security/fields.py) and shared by every row.
_REASSIGN_SQL = (
    "WITH moved AS (\n"
    "  UPDATE leads SET assigned_broker_id = %(to_broker)s, updated_at = now()\n"
    "   WHERE assigned_broker_id = %(from_broker)s\n"
    "  RETURNING id, assigned_broker_id\n"
    ")\n"
    + lead_events_insert_sql(
        "lead_reassigned",
        source="moved",
        data_sql=(
            "jsonb_build_object('from_broker', %(from_broker)s::text, 'from_broker_name', %(from_name)s::text,"
            " 'to_broker', %(to_broker)s::text, 'to_broker_name', %(to_name)s::text, 'reason', %(reason)s::text,"
            " 'by', %(by)s::text)"
        ),
    )
)


def broker_offboard_preview(*, broker: Broker) -> OffboardPreview:
    """What offboarding `broker` would touch: their leads and the partner keys that route uploads to them."""
    return OffboardPreview(
        broker=broker,
        leads=Lead.objects.for_broker(broker).count(),
        partner_keys=list(PartnerKey.objects.filter(default_broker=broker).values_list("key_id", flat=True)),
    )


def broker_offboard(*, broker: Broker, to_broker: Broker | None, reason: str, user=None) -> OffboardResult:
    """Deactivate `broker` and reassign every lead assigned to them to `to_broker`, in one transaction.

    Changes: `brokers.active` of `broker` (false) and `leads.assigned_broker_id` of their leads. Records a
    `lead_reassigned` event per moved lead (reason, both brokers, who) and one `broker_offboarded` event with the
    count. `to_broker` may be None only when the broker holds no lead. Raises BrokerOffboardError for a missing
    reason, a target that is the same broker or inactive, or leads with nowhere to go."""
    reason = (reason or "").strip()
    if not reason:
        raise BrokerOffboardError("Give the reason: it is written on each reassigned lead's timeline.")
    if len(reason) > REASON_MAX_LENGTH:
        raise BrokerOffboardError(f"The reason is too long (at most {REASON_MAX_LENGTH} characters).")
    by = getattr(user, "email", None) or getattr(user, "username", None) or ""
    with transaction.atomic():
        # Lock both rows: a concurrent offboarding of the target cannot leave the leads on an inactive broker.
        ids = [broker.pk] + ([to_broker.pk] if to_broker is not None else [])
        locked = {row.pk: row for row in Broker.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        broker = locked.get(broker.pk)
        if broker is None:
            raise BrokerOffboardError("That broker no longer exists.")
        if to_broker is not None:
            to_broker = locked.get(to_broker.pk)
            if to_broker is None:
                raise BrokerOffboardError("The broker to hand the leads to no longer exists.")
            if to_broker.pk == broker.pk:
                raise BrokerOffboardError("Choose another broker to hand the leads to, not the one leaving.")
            if not to_broker.active:
                raise BrokerOffboardError(f"{to_broker.name} is inactive: choose an active broker.")
        elif Lead.objects.for_broker(broker).exists():
            raise BrokerOffboardError(f"{broker.name} still has leads: choose the broker to hand them to.")
        moved = 0
        if to_broker is not None:
            with connection.cursor() as cursor:
                cursor.execute(
                    _REASSIGN_SQL,
                    {
                        "from_broker": str(broker.pk),
                        "from_name": broker.name,
                        "to_broker": str(to_broker.pk),
                        "to_name": to_broker.name,
                        "reason": seal_note(reason),
                        "by": by,
                        "upload": None,
                    },
                )
                moved = cursor.rowcount
        was_active = broker.active
        Broker.objects.filter(pk=broker.pk).update(active=False, updated_at=timezone.now())
        broker.active = False
        record_event(
            "broker_offboarded",
            broker_id=broker.pk,
            data={
                "broker": str(broker.pk),
                "broker_name": broker.name,
                "was_active": was_active,
                "to_broker": str(to_broker.pk) if to_broker else None,
                "to_broker_name": to_broker.name if to_broker else None,
                "leads_moved": moved,
                "reason": seal_note(reason),
                "by": by,
            },
        )
    return OffboardResult(broker=broker, to_broker=to_broker, leads_moved=moved)
