"""The feeder's ledger and the inbound Instantly deliveries: read-only records (the jobs write them).

The "run now" buttons (MV refresh, feeder dry run) live with the other ops actions in
pipeline/monitoring/admin.py and call the jobs' own `*_run` functions. The schedules themselves
are django-q2's "Scheduled tasks" (declared in pipeline/schedules.py; a change there is undone by
`manage.py sync_schedules`, except a pause: set Repeats to 0).
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from pipeline.models import FeederRun, WebhookDelivery


class _ReadOnlyAdmin(admin.ModelAdmin):
    """A record the jobs write: viewed here, never added, edited or deleted (no "Delete selected")."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FeederRun)
class FeederRunAdmin(_ReadOnlyAdmin):
    list_display = (
        "business_date",
        "status",
        "dry_run",
        "leads_claimed",
        "leads_pushed",
        "leads_skipped",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", "dry_run")
    date_hierarchy = "business_date"
    search_fields = ("error_message",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnlyAdmin):
    list_display = ("event_type", "lead_link", "received_at")
    list_filter = ("event_type",)
    search_fields = ("dedupe_hash",)  # the address is encrypted: find a delivery by its lead
    raw_id_fields = ("lead",)
    list_select_related = ("lead",)

    @admin.display(description="lead", ordering="lead")
    def lead_link(self, obj):
        if obj.lead_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:leads_lead_change", args=[obj.lead_id]), obj.lead)

    date_hierarchy = "received_at"
