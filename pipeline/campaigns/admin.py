"""The feeder's ledger and the inbound Instantly deliveries: read-only records (the jobs write them); the feeder's
holiday calendar, edited here.

The "run now" buttons (MV refresh, feeder dry run) live with the other ops actions in
pipeline/monitoring/admin.py and call the jobs' own `*_run` functions. The schedules themselves
are django-q2's "Scheduled tasks" (declared in pipeline/schedules.py; a change there is undone by
`manage.py sync_schedules`, except a pause: set Repeats to 0).
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from pipeline.models import BusinessHoliday, FeederRun, WebhookDelivery

from .calendar import holiday_delete, holiday_save


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


@admin.register(BusinessHoliday)
class BusinessHolidayAdmin(admin.ModelAdmin):
    """The feeder's holiday calendar: the feeder does not feed on these Los Angeles dates. Saves and deletions go
    through pipeline/campaigns/calendar.py, which records `holiday_changed`."""

    list_display = ("day", "weekday", "name", "updated_at")
    ordering = ("day",)
    search_fields = ("name",)
    date_hierarchy = "day"
    fields = ("day", "name")
    actions = ("delete_holidays",)

    @admin.display(description="weekday")
    def weekday(self, obj):
        return f"{obj.day:%A}"

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the bulk delete would skip the service and its event
        return actions

    def save_model(self, request, obj, form, change):
        holiday_save(holiday=obj, user=request.user)

    def delete_model(self, request, obj):
        holiday_delete(holiday=obj, user=request.user)

    @admin.action(description="Remove the selected holidays (fed again on those days)", permissions=["delete"])
    def delete_holidays(self, request, queryset):
        count = 0
        for holiday in queryset:
            holiday_delete(holiday=holiday, user=request.user)
            count += 1
        self.message_user(request, f"Removed {count} holiday(s).")
