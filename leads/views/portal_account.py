"""The broker's own portal pages beside the leads: notifications (the header's badge opens them), settings
(e-mail notifications on or off) and the lead list's column chooser. Thin views over leads/notifications.py and
leads/preferences.py; each reads and writes only the requesting broker's rows (RLS is the second wall)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from ..forms import ListColumnsForm, PortalSettingsForm
from ..notifications import notifications_mark_seen, notifications_recent
from ..preferences import broker_settings_get, broker_settings_update
from .portal import broker_required


@require_http_methods(["GET"])
@broker_required
def notifications(request):
    """The broker's latest notifications; opening the page marks them seen (the badge clears)."""
    items = notifications_recent(broker=request.broker)
    seen = notifications_mark_seen(broker=request.broker)
    request.notification_count = 0
    return render(request, "portal/notifications.html", {"items": items, "newly_seen": seen, "nav": "notifications"})


@require_http_methods(["GET", "POST"])
@broker_required
def portal_settings(request):
    current = broker_settings_get(broker=request.broker)
    if request.method == "POST":
        form = PortalSettingsForm(request.POST)
        if form.is_valid():
            broker_settings_update(broker=request.broker, notify_by_email=form.cleaned_data["notify_by_email"])
            messages.success(request, "Settings saved.")
            return redirect("portal:settings")
    else:
        form = PortalSettingsForm(initial={"notify_by_email": current.notify_by_email})
    return render(request, "portal/settings.html", {"form": form, "nav": "settings"})


@require_POST
@broker_required
def list_columns(request):
    """Save the lead list's columns for the broker; back to the list as it was (`next`, a local URL only)."""
    form = ListColumnsForm(request.POST)
    if form.is_valid():
        broker_settings_update(broker=request.broker, list_columns=form.cleaned_data["columns"])
        messages.success(request, "Columns saved.")
    else:
        messages.error(request, "Choose columns from the list.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = ""
    if not target.startswith("/portal/leads/"):
        target = "/portal/leads/"
    return redirect(target)
