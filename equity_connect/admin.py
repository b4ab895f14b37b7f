"""The event trail in the admin: read-only (append-only in the database too)."""

from __future__ import annotations

import json
import uuid

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from .humanise import duration_ms
from .models import PipelineEvent


@admin.register(PipelineEvent)
class PipelineEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event_type",
        "status",
        "lead_link",
        "broker_link",
        "upload_link",
        "duration",
        "short_error",
    )
    list_filter = ("event_type", "status")
    search_fields = ("=lead_id", "=upload_id", "=broker_id")
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = (
        "event_type",
        "status",
        "lead_link",
        "broker_link",
        "upload_link",
        "event_data_pretty",
        "duration",
        "error_message",
        "created_at",
    )
    fields = readonly_fields
    exclude = ("event_data",)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return queryset.none(), False
        return queryset.filter(Q(lead_id=value) | Q(upload_id=value) | Q(broker_id=value)), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the trail is append-only

    def has_delete_permission(self, request, obj=None):
        return False

    # Every id is a link: to the lead, the broker, the upload (ids the database keeps even when the row is gone).
    def _link(self, url_name: str, value):
        if value is None:
            return "—"
        return format_html('<a href="{}" title="{}">{}</a>', reverse(url_name, args=[value]), value, str(value)[:8])

    @admin.display(description="lead", ordering="lead_id")
    def lead_link(self, obj):
        return self._link("admin:leads_lead_change", obj.lead_id)

    @admin.display(description="broker", ordering="broker_id")
    def broker_link(self, obj):
        return self._link("admin:security_broker_change", obj.broker_id)

    @admin.display(description="upload", ordering="upload_id")
    def upload_link(self, obj):
        return self._link("admin:pipeline_upload_change", obj.upload_id)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj):
        return duration_ms(obj.duration_ms) if obj.duration_ms is not None else "—"

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error_message or "")[:80]

    @admin.display(description="event data")
    def event_data_pretty(self, obj):
        return format_html(
            '<pre style="white-space: pre-wrap; margin: 0;">{}</pre>',
            json.dumps(obj.event_data, indent=2, ensure_ascii=False, sort_keys=True),
        )
