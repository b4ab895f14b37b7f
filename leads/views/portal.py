"""The broker portal (`/portal/…`). Thin views over `leads.selectors` and `leads.services`.

Every view is `broker_required`: staff go to the admin, a user without an active broker gets a 403 page.
The middleware has already opened the broker's RLS context (authenticated + their id); the selectors
scope through `Lead.objects.for_broker(...)` too. Another broker's lead is a 404, never a 403.
"""

from __future__ import annotations

import csv
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_POST

from equity_connect.db import AUTHENTICATED, current_context
from equity_connect.spreadsheets import spreadsheet_safe
from security.models import Broker

from .. import selectors, services
from ..access import access_record
from ..columns import PORTAL_EXPORT
from ..compliance.contact_windows import local_time_text
from ..consent.services import consent_link_send
from ..contact_edit import lead_contact_update
from ..contactability import channel_closed, lead_contactability
from ..display import broker_zone
from ..forms import ContactEditForm, DoNotContactForm, LeadFilterForm, OutcomeForm
from ..models import Lead
from ..notifications import notifications_unseen_count
from ..preferences import LIST_COLUMNS, shown_columns
from . import workday_context as workday_views


def broker_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if user.is_staff:
            return redirect("/admin/")
        broker_id = getattr(request, "broker_id", None)
        context = current_context()
        # Fail closed: the broker's own RLS context must be open (DatabaseContextMiddleware).
        if (
            broker_id is None
            or context is None
            or context.role != AUTHENTICATED
            or context.broker_id is None
            or str(context.broker_id) != str(broker_id)
        ):
            return render(request, "portal/no_broker.html", status=403)
        request.broker = Broker.objects.get(pk=broker_id)
        # The header's badge (base.html): counted only when a page shows it.
        request.notification_count = SimpleLazyObject(lambda: notifications_unseen_count(broker=request.broker))
        # Every time on the portal's pages (and the created-date filters) in the broker's own zone.
        with timezone.override(broker_zone(request.broker)):
            return view(request, *args, **kwargs)

    return wrapper


def _get_lead(request, lead_id) -> Lead:
    try:
        return selectors.lead_get(broker=request.broker, lead_id=lead_id)
    except Lead.DoesNotExist:
        raise Http404("No such lead") from None


def _page_number(request) -> int:
    try:
        return int(request.GET.get("page", "1"))
    except ValueError:
        return 1


# The list's sortable columns: (column, sort when first clicked, the other direction).
SORTABLE_COLUMNS = {
    "name": ("name", "name_desc"),
    "score": ("score", "score_low"),
    "status": ("status", "status_desc"),
    "created": ("newest", "oldest"),
}


def _column_sorts(query, current: str) -> dict[str, dict]:
    """For each sortable column header: the link that sorts by it (the other direction when it is the current
    sort) and its `aria-sort` state."""
    headers = {}
    for column, (first, other) in SORTABLE_COLUMNS.items():
        target = other if current == first else first
        state = "ascending" if current in ("name", "oldest", "score_low", "status") else "descending"
        linked = query.copy()
        linked["sort"] = target
        linked.pop("page", None)
        headers[column] = {"url": "?" + linked.urlencode(), "aria_sort": state if current in (first, other) else None}
    return headers


@require_GET
@broker_required
def lead_list(request):
    params, current_view = workday_views.list_parameters(request)
    if params is None:  # landed without parameters: on to the broker's default view
        return redirect(f"{reverse('portal:lead_list')}?view={current_view.pk}")
    form = LeadFilterForm(params or None)
    filters = form.filters()
    page_size = form.page_size()
    page = selectors.lead_page(broker=request.broker, filters=filters, page=_page_number(request), page_size=page_size)
    workday_views.mark_appointments(page.leads)
    query = params.copy()
    query.pop("page", None)
    detail_query = query.copy()
    detail_query["page"] = page.page
    return render(
        request,
        "portal/lead_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "detail_query": detail_query.urlencode(),
            "columns": _column_sorts(query, selectors.sort_key(filters)),
            "nav": "leads",
            "export_url": f"{reverse('portal:lead_export')}?{query.urlencode()}",
            **workday_views.list_context(request, query=query, current_view=current_view, page=page),
            # The column chooser (stored per broker: leads/preferences.py).
            "shown": set(shown_columns(broker=request.broker)),
            "column_labels": LIST_COLUMNS,
        },
    )


class _Echo:
    def write(self, value):
        return value


@require_GET
@broker_required
def lead_export(request):
    """CSV of exactly the broker's leads that match the list's filters (all pages). One access record names the
    filters and the row count: it is written once the last row is read, still inside the request's database
    context (the middleware drains a streaming response within it)."""
    filters = LeadFilterForm(request.GET or None).filters()
    return export_response(request, selectors.lead_list(broker=request.broker, filters=filters), filters=filters)


def export_response(request, leads, *, filters, via: str = "portal.lead_export") -> StreamingHttpResponse:
    """The CSV of `leads` (a scoped queryset), streamed; its access record (`filters`: what was exported) is
    written once the last row is read, inside the request's database context."""
    queryset = leads.values_list(*PORTAL_EXPORT)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(PORTAL_EXPORT)
        count = 0
        for row in queryset.iterator(chunk_size=2000):
            count += 1
            yield writer.writerow([spreadsheet_safe(value) for value in row])
        access_record(request=request, action="export", via=via, filters=filters, row_count=count)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
    return response


def _render_detail(request, lead, status: int = 200, **extra):
    """The lead's page, with everything a broker sees of it: recorded as a view of the lead."""
    access_record(request=request, action="view", via="portal.lead_detail", lead_ids=[lead.pk])
    return render(request, "portal/lead_detail.html", _detail_context(request, lead, **extra), status=status)


def _detail_context(request, lead, **extra):
    context = {
        "lead": lead,
        "nav": "leads",
        "codes": selectors.lead_verification_codes(lead=lead),
        "consent_history": selectors.lead_consent_history(lead=lead),
        "timeline": selectors.lead_timeline(lead=lead, zone=broker_zone(request.broker)),
        "queue_blockers": services.lead_queue_blockers(lead=lead),
        "contactability": lead_contactability(lead=lead),
        "email_closed": channel_closed(lead=lead, channel="email"),
        "phone_closed": channel_closed(lead=lead, channel="phone"),
        "dnc_form": DoNotContactForm(),
        "outcome_form": OutcomeForm(),
        "contact_form": ContactEditForm.for_lead(lead),
        "breakdown": _breakdown(lead.score_breakdown),
        "score_model": _score_model(lead.score_breakdown),
        **_list_navigation(request, lead),
        **workday_views.detail_context(request, lead),
    }
    context.update(extra)
    return context


def _list_navigation(request, lead) -> dict:
    """The way back to the list view the broker came from (its filters, search, sort, page size and page, carried
    in the detail's query string) and the previous and next leads in it."""
    form = LeadFilterForm(request.GET or None)
    query = request.GET.copy()
    neighbours = selectors.lead_neighbours(
        broker=request.broker,
        filters=form.filters(),
        lead_id=lead.pk,
        page=_page_number(request),
        page_size=form.page_size(),
    )

    def detail_url(lead_id, page):
        if lead_id is None:
            return None
        linked = query.copy()
        linked["page"] = page
        return f"{reverse('portal:lead_detail', kwargs={'lead_id': lead_id})}?{linked.urlencode()}"

    return {
        "list_url": f"{reverse('portal:lead_list')}?{query.urlencode()}" if query else reverse("portal:lead_list"),
        "previous_url": detail_url(neighbours.previous_id, neighbours.previous_page),
        "next_url": detail_url(neighbours.next_id, neighbours.next_page),
        "position": neighbours.position,
        "back_query": query.urlencode(),
    }


def _score_model(value) -> dict | None:
    """When the learned score ranked the lead (leads/learned/scoring.py): its version and what weighed most."""
    if not isinstance(value, dict) or "model_version" not in value:
        return None
    probability = value.get("probability")
    return {
        "version": value["model_version"],
        "explanation": str(value.get("explanation") or ""),
        "percent": None if not isinstance(probability, int | float) else f"{probability:.1%}",
    }


def _breakdown(value) -> list[tuple[str, object]]:
    """The score breakdown as (label, value) rows, whatever its exact shape."""
    if not isinstance(value, dict):
        return []
    rows = []
    for key, item in value.items():
        label = str(key).replace("_", " ").capitalize()
        if isinstance(item, dict):
            shown = item.get("points", item.get("score", item.get("value")))
            detail = ", ".join(f"{k}: {v}" for k, v in item.items() if k not in ("points", "score", "value"))
            rows.append((label, f"{shown}" + (f" ({detail})" if detail else "") if shown is not None else detail))
        else:
            rows.append((label, item))
    return rows


@require_GET
@broker_required
def lead_detail(request, lead_id):
    lead = _get_lead(request, lead_id)
    if lead.merged_into_id is not None:
        # A tombstone: on to the lead it was merged into, if that is this broker's too (else a 404, like any
        # lead that is not theirs).
        survivor = selectors.lead_survivor(broker=request.broker, lead=lead)
        if survivor is None:
            raise Http404("No such lead")
        messages.info(request, "That lead was merged into this one.")
        return redirect("portal:lead_detail", lead_id=survivor.pk)
    return _render_detail(request, lead)


def _run(request, lead, action, success):
    """Run a service for the lead; its LeadError becomes a message. Always back to the lead's page. `success`
    is the message, or a function of what the service returned that makes it."""
    try:
        result = action()
    except services.LeadError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success(result) if callable(success) else success)
    return redirect("portal:lead_detail", lead_id=lead.pk)


@require_POST
@broker_required
def lead_queue(request, lead_id):
    lead = _get_lead(request, lead_id)
    return _run(
        request,
        lead,
        lambda: services.lead_queue_for_campaign(lead=lead, broker=request.broker),
        "Queued for the next campaign run.",
    )


@require_POST
@broker_required
def lead_do_not_contact(request, lead_id):
    lead = _get_lead(request, lead_id)
    form = DoNotContactForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, lead, status=400, dnc_form=form)
    reason = form.cleaned_data["reason"]
    return _run(
        request,
        lead,
        lambda: services.lead_mark_do_not_contact(lead=lead, broker=request.broker, reason=reason),
        "Marked do-not-contact.",
    )


@require_POST
@broker_required
def lead_outcome(request, lead_id):
    lead = _get_lead(request, lead_id)
    form = OutcomeForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, lead, status=400, outcome_form=form)
    data = form.cleaned_data
    return _run(
        request,
        lead,
        lambda: services.lead_record_outcome(
            lead=lead,
            broker=request.broker,
            outcome=data["outcome"],
            note=data.get("note", ""),
            appointment_at=data.get("appointment_at"),
        ),
        "Outcome recorded.",
    )


@require_POST
@broker_required
def lead_consent_link(request, lead_id):
    """E-mail the lead a consent link. The broker never sees the link: whoever holds it can answer for the lead."""
    lead = _get_lead(request, lead_id)
    return _run(
        request,
        lead,
        lambda: consent_link_send(lead=lead, broker=request.broker, user=request.user),
        lambda opening: (
            f"The lead's contact window is closed now: a consent link will be e-mailed to the lead, at the address"
            f" the partner supplied, when it opens ({local_time_text(lead, opening)}, the lead's time)."
            if opening
            else "A consent link was e-mailed to the lead, at the address the partner supplied."
        ),
    )


@require_POST
@broker_required
def lead_contact_edit(request, lead_id):
    """Change the lead's e-mail, phone and mailing address (leads/contact_edit.py): a typed e-mail or phone is
    unconfirmed, so it gets no consent link and is not fed until a partner file or a verification confirms it."""
    lead = _get_lead(request, lead_id)
    form = ContactEditForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, lead, status=400, contact_form=form, contact_open=True)
    try:
        change = lead_contact_update(lead=lead, broker=request.broker, values=form.cleaned_data, user=request.user)
    except services.LeadError as error:
        form.add_error(None, str(error))
        return _render_detail(request, lead, status=400, contact_form=form, contact_open=True)
    if not change.fields:
        messages.info(request, "Nothing changed.")
    elif {"email", "phone"} & set(change.fields):
        messages.success(
            request,
            "Contact details saved. A new e-mail or phone you typed is unconfirmed: no consent link goes to it and"
            " the lead is not fed until a partner file or a verification confirms it.",
        )
    else:
        messages.success(request, "Contact details saved.")
    return redirect("portal:lead_detail", lead_id=lead.pk)
