"""The event trail in the admin: read-only (append-only in the database too)."""

from __future__ import annotations

import json
import uuid

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html

from .models import PipelineEvent


@admin.register(PipelineEvent)
class PipelineEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event_type",
        "status",
        "lead_id",
        "broker_id",
        "upload_id",
        "duration_ms",
        "short_error",
    )
    list_filter = ("event_type", "status")
    search_fields = ("=lead_id", "=upload_id", "=broker_id")
    show_full_result_count = False
    date_hierarchy = "created_at"
    readonly_fields = (
        "event_type",
        "status",
        "lead_id",
        "broker_id",
        "upload_id",
        "event_data_pretty",
        "duration_ms",
        "error_message",
        "created_at",
    )
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

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error_message or "")[:80]

    @admin.display(description="event data")
    def event_data_pretty(self, obj):
        return format_html(
            '<pre style="white-space: pre-wrap; margin: 0;">{}</pre>',
            json.dumps(obj.event_data, indent=2, ensure_ascii=False, sort_keys=True),
        )
