"""What the lead list and the lead page show of a broker's working day (saved views, appointments, follow-ups,
the bulk-action bar). Helpers of leads/views/portal.py, kept apart from its endpoints (portal_workday.py)."""

from __future__ import annotations

from django.http import Http404, QueryDict

from ..workday import selectors as workday
from ..workday.bulk import BULK_MAX
from ..workday.forms import BULK_ACTIONS, FollowUpForm, SavedViewForm
from ..workday.models import SavedView

# The parameters that do not change what the list shows: without any other, a saved view's query is used.
NOT_FILTERS = ("view", "page")


def list_parameters(request) -> tuple[QueryDict | None, SavedView | None]:
    """The list's parameters and the saved view they come from. `?view=<id>` opens one of the broker's views (a
    404 for any other); `?view=all` is the plain list; no parameters at all: (None, the default view) when the
    broker has one, so the view redirects to it."""
    chosen = request.GET.get("view", "")
    if not request.GET:
        default = workday.saved_view_default(broker=request.broker)
        return (None, default) if default is not None else (request.GET, None)
    params = request.GET.copy()
    for name in NOT_FILTERS:
        params.pop(name, None)
    if chosen in ("", "all"):
        return params, None
    try:
        view = workday.saved_view_get(broker=request.broker, view_id=chosen)
    except SavedView.DoesNotExist:
        raise Http404("No such view") from None
    if not params:
        params = QueryDict(view.query, mutable=True)
    return params, view


def mark_appointments(leads) -> None:
    """Set `appointment_booked` and `appointment_at` on each lead of a page (one query)."""
    booked = workday.appointments_booked(leads=leads)
    for lead in leads:
        lead.appointment_booked = lead.pk in booked
        lead.appointment_at = booked.get(lead.pk)


def list_context(request, *, query: QueryDict, current_view, page) -> dict:
    return {
        "saved_views": workday.saved_views(broker=request.broker),
        "current_view": current_view,
        "save_view_form": SavedViewForm(initial={"query": query.urlencode()}),
        "bulk_actions": BULK_ACTIONS,
        "bulk_max": BULK_MAX,
        "bulk_query": query.urlencode(),
        "page_ids": [str(lead.pk) for lead in page.leads],
    }


def detail_context(request, lead) -> dict:
    booked = workday.appointments_booked(leads=[lead])
    return {
        "follow_ups": workday.lead_follow_ups(lead=lead),
        "follow_up_form": FollowUpForm(),
        "appointment_booked": lead.pk in booked,
        "appointment_at": booked.get(lead.pk),
    }
