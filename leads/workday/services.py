"""Write paths of a broker's working day: follow-up tasks and saved list views. Keyword-only; each runs in a
transaction with the caller's database context (the broker's: row-level security, migration 0018, is the second
wall behind the scoped querysets). Bulk actions on many leads are in bulk.py."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.utils import timezone

from equity_connect.events import record_event
from security.fields import seal_note

from ..models import Lead
from ..services import LeadError, locked_lead
from .models import FollowUp, SavedView

NOTE_MAX = 2000
# The list's parameters a saved view keeps (the page number is not one: a view opens at its first page).
VIEW_PARAMETERS = (
    "q",
    "status",
    "email_verified",
    "phone_verified",
    "consent",
    "score_min",
    "score_max",
    "created_from",
    "created_to",
    "sort",
    "per_page",
)
VIEWS_PER_BROKER = 50


def follow_up_create(*, lead: Lead, broker, due_date: date, note: str = "") -> FollowUp:
    """Add a follow-up task on one of the broker's leads, due on `due_date`; records `follow_up_added` (with the
    due date and the note, sealed). Raises LeadError when the lead is not the broker's."""
    if due_date is None:
        raise LeadError("Give the follow-up's due date.")
    note = (note or "").strip()[:NOTE_MAX]
    with transaction.atomic():
        lead = locked_lead(lead, broker)
        follow_up = FollowUp.objects.create(lead=lead, broker_id=lead.assigned_broker_id, due_date=due_date, note=note)
        record_event(
            "follow_up_added",
            lead_id=lead.pk,
            broker_id=lead.assigned_broker_id,
            data={
                "follow_up": follow_up.pk,
                "due_date": due_date.isoformat(),
                "note": seal_note(note),
                "by": "broker",
            },
        )
    return follow_up


def follow_up_complete(*, follow_up_id: int, broker) -> FollowUp:
    """Mark one of the broker's follow-ups done (once: a second call changes nothing); records `follow_up_done`.
    Raises FollowUp.DoesNotExist for another broker's (the view's 404)."""
    with transaction.atomic():
        follow_up = FollowUp.objects.select_for_update().get(pk=follow_up_id, broker_id=getattr(broker, "pk", broker))
        if follow_up.done_at is None:
            follow_up.done_at = timezone.now()
            follow_up.save(update_fields=["done_at"])
            record_event(
                "follow_up_done",
                lead_id=follow_up.lead_id,
                broker_id=follow_up.broker_id,
                data={"follow_up": follow_up.pk, "due_date": follow_up.due_date.isoformat(), "by": "broker"},
            )
    return follow_up


def view_query_clean(query: str) -> str:
    """A list query string reduced to the parameters a view keeps, in a stable order."""
    source = QueryDict(query or "")
    pairs = [(name, value[:200]) for name in VIEW_PARAMETERS for value in source.getlist(name)[:20] if value != ""]
    return urlencode(pairs)


def saved_view_save(*, broker, name: str, query: str, make_default: bool = False) -> SavedView:
    """Save the list's current filters, search and sort under `name` (a view of the same name is replaced), and
    make it the default when asked. Raises LeadError for an empty or too long name, or too many views."""
    name = " ".join((name or "").split())
    if not name:
        raise LeadError("Give the view a name.")
    if len(name) > 80:
        raise LeadError("A view's name has at most 80 characters.")
    broker_id = getattr(broker, "pk", broker)
    with transaction.atomic():
        views = SavedView.objects.filter(broker_id=broker_id)
        view = views.select_for_update().filter(name=name).first()
        if view is None and views.count() >= VIEWS_PER_BROKER:
            raise LeadError(f"You have {VIEWS_PER_BROKER} saved views, the most allowed: delete one first.")
        if view is None:
            view = SavedView(broker_id=broker_id, name=name)
        view.query = view_query_clean(query)
        if make_default:
            views.exclude(pk=view.pk).filter(is_default=True).update(is_default=False)
            view.is_default = True
        try:
            with transaction.atomic():
                view.save()
        except IntegrityError:
            raise LeadError("Another view was saved at the same moment: try again.") from None
    return view


def saved_view_default_set(*, broker, view_id: int, is_default: bool = True) -> SavedView:
    """Make the view the broker's default (no other is), or no longer the default. Raises SavedView.DoesNotExist
    for another broker's view."""
    broker_id = getattr(broker, "pk", broker)
    with transaction.atomic():
        view = SavedView.objects.select_for_update().get(pk=view_id, broker_id=broker_id)
        if is_default:
            SavedView.objects.filter(broker_id=broker_id, is_default=True).exclude(pk=view.pk).update(is_default=False)
        view.is_default = is_default
        view.save(update_fields=["is_default"])
    return view


def saved_view_delete(*, broker, view_id: int) -> None:
    """Delete one of the broker's views. Raises SavedView.DoesNotExist for another broker's."""
    with transaction.atomic():
        SavedView.objects.get(pk=view_id, broker_id=getattr(broker, "pk", broker)).delete()
