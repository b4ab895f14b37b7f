"""Staging rows in the admin (read them to see what a file looked like after normalisation). A staging row is a raw
row of a partner's file: its e-mail, phone and raw columns are masked until the reason is given, once per session,
as on the DLQ (leads/masking.py)."""

from django.contrib import admin

from leads.masking import PiiMaskingMixin
from pipeline.models import LeadStaging


@admin.register(LeadStaging)
class LeadStagingAdmin(PiiMaskingMixin, admin.ModelAdmin):
    pii_fields = ("email", "phone", "raw", "melissa_payload")
    pii_reveal_scope = "session"
    pii_via = "admin.staging"
    list_display = ("upload", "line_number", "addr_hash", "reject_reason", "created_at")
    search_fields = ("upload__id", "mak", "apn")
    raw_id_fields = ("upload",)
