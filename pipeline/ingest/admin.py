"""Staging rows in the admin (read them to see what a file looked like after normalisation)."""

from django.contrib import admin

from pipeline.models import LeadStaging


@admin.register(LeadStaging)
class LeadStagingAdmin(admin.ModelAdmin):
    list_display = ("upload", "line_number", "addr_hash", "reject_reason", "created_at")
    search_fields = ("upload__id", "mak", "apn")
    raw_id_fields = ("upload",)
