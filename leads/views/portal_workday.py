"""The portal's working-day endpoints: follow-ups, saved views, My day and bulk actions on selected leads.

Thin views over leads/workday/{services,selectors,bulk}.py, behind the same `broker_required` as the rest of the
portal. Another broker's lead, follow-up or view is a 404, never a 403, and nothing is changed.
"""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import messages
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ..display import broker_zone
from ..forms import LeadFilterForm
from ..services import LeadError
from ..workday import bulk, services
from ..workday import selectors as workday
from ..workday.forms import BulkActionForm, FollowUpForm, SavedViewForm
from ..workday.models import FollowUp, SavedView
from .portal import _get_lead, _render_detail, _run, broker_required, export_response


def _list_url(query: str = "") -> str:
    # Re-encoded: only a query string of our own list goes back into the redirect.
    clean = QueryDict(query or "").urlencode()
    return f"{reverse('portal:lead_list')}?{clean}" if clean else f"{reverse('portal:lead_list')}?view=all"


@require_POST
@broker_required
def follow_up_add(request, lead_id):
    lead = _get_lead(request, lead_id)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, lead, status=400, follow_up_form=form)
    data = form.cleaned_data
    return _run(
        request,
        lead,
        lambda: services.follow_up_create(
            lead=lead, broker=request.broker, due_date=data["due_date"], note=data.get("note", "")
        ),
        lambda follow_up: f"Follow-up added, due {follow_up.due_date:%b %-d, %Y}.",
    )


@require_POST
@broker_required
def follow_up_done(request, follow_up_id):
    try:
        follow_up = services.follow_up_complete(follow_up_id=follow_up_id, broker=request.broker)
    except FollowUp.DoesNotExist:
        raise Http404("No such follow-up") from None
    messages.success(request, "Follow-up done.")
    if request.POST.get("back") == "my_day":
        return redirect("portal:my_day")
    return redirect("portal:lead_detail", lead_id=follow_up.lead_id)


@require_POST
@broker_required
def saved_view_save(request):
    form = SavedViewForm(request.POST)
    query = request.POST.get("query", "")
    if not form.is_valid():
        messages.error(request, "Give the view a name (at most 80 characters).")
        return redirect(_list_url(query))
    try:
        view = services.saved_view_save(
            broker=request.broker,
            name=form.cleaned_data["name"],
            query=form.cleaned_data["query"],
            make_default=form.cleaned_data["make_default"],
        )
    except LeadError as error:
        messages.error(request, str(error))
        return redirect(_list_url(query))
    messages.success(request, f"View “{view.name}” saved{' as your default' if view.is_default else ''}.")
    return redirect(f"{reverse('portal:lead_list')}?view={view.pk}")


@require_POST
@broker_required
def saved_view_default(request, view_id):
    make_default = request.POST.get("default", "1") != "0"
    try:
        view = services.saved_view_default_set(broker=request.broker, view_id=view_id, is_default=make_default)
    except SavedView.DoesNotExist:
        raise Http404("No such view") from None
    messages.success(
        request, f"“{view.name}” opens when you go to My leads." if view.is_default else "No default view now."
    )
    return redirect(f"{reverse('portal:lead_list')}?view={view.pk}")


@require_POST
@broker_required
def saved_view_delete(request, view_id):
    try:
        services.saved_view_delete(broker=request.broker, view_id=view_id)
    except SavedView.DoesNotExist:
        raise Http404("No such view") from None
    messages.success(request, "View deleted.")
    return redirect(_list_url())


@require_GET
@broker_required
def my_day(request):
    day = workday.my_day(broker=request.broker, zone=broker_zone(request.broker))
    return render(
        request,
        "portal/my_day.html",
        {"day": day, "nav": "my_day", "saved_views": workday.saved_views(broker=request.broker)},
    )


BULK_DONE = {
    "queue": "Queued {changed} of {selected} selected leads for the next campaign run.",
    "do_not_contact": "Marked {changed} of {selected} selected leads do-not-contact.",
    "consent_links": "Consent links will be e-mailed to {changed} of {selected} selected leads"
    " (each inside the lead's contact window).",
    "follow_up": "Added a follow-up to {changed} of {selected} selected leads.",
}


def _posted_ids(request) -> list[str]:
    """The selected ids: the page's checked rows (`id`, repeated) and those chosen on other pages, which the
    script sends as one comma-separated field (`ids`): a field per lead would pass Django's limit on the number
    of fields (DATA_UPLOAD_MAX_NUMBER_FIELDS) at a thousand leads."""
    carried = [value.strip() for value in request.POST.get("ids", "").split(",") if value.strip()]
    return [*request.POST.getlist("id"), *carried]


@require_POST
@broker_required
def lead_bulk(request):
    """One bulk action on the selected leads (`_posted_ids`) or on every lead matching the list's query (`scope`
    matching). Back to the list with how many changed and, for the rest, why they were skipped; `export` answers
    with the CSV instead. Any selected id that is not the broker's lead: 404, nothing changed."""
    form = BulkActionForm(request.POST)
    query = request.POST.get("query", "")
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(_list_url(query))
    data = form.cleaned_data
    broker = request.broker
    filters = None
    if data.get("scope") == "matching":
        filters = LeadFilterForm(QueryDict(data.get("query") or "") or None).filters()
    try:
        ids = bulk.bulk_selection(broker=broker, lead_ids=_posted_ids(request), filters=filters)
    except bulk.BulkSelectionNotFound:
        raise Http404("No such lead") from None
    except LeadError as error:
        messages.error(request, str(error))
        return redirect(_list_url(query))
    action = data["action"]
    if action == "export":
        record = {"selection": "matching", **asdict(filters)} if filters is not None else {"selection": "chosen"}
        return export_response(
            request, bulk._selected(broker, ids).live().order_by("created_at", "id"), filters=record, via="portal.bulk"
        )
    try:
        if action == "queue":
            outcome = bulk.bulk_queue(broker=broker, lead_ids=ids)
        elif action == "do_not_contact":
            outcome = bulk.bulk_do_not_contact(broker=broker, lead_ids=ids, reason=data["reason"], user=request.user)
        elif action == "consent_links":
            outcome = bulk.bulk_consent_links(broker=broker, lead_ids=ids, user=request.user)
        else:
            outcome = bulk.bulk_follow_up(broker=broker, lead_ids=ids, due_date=data["due_date"], note=data["note"])
    except LeadError as error:
        messages.error(request, str(error))
        return redirect(_list_url(query))
    messages.success(request, BULK_DONE[action].format(changed=outcome.changed, selected=outcome.selected))
    for reason, leads in outcome.skipped.items():
        names = ", ".join(name for _, name in leads[:5]) + (f" and {len(leads) - 5} more" if len(leads) > 5 else "")
        messages.warning(request, f"Skipped {len(leads)}: {reason} ({names}).")
    return redirect(_list_url(query))
