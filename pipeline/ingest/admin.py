"""Staging rows in the admin (read them to see what a file looked like after normalisation). A staging row is a raw
row of a partner's file: its e-mail, phone and raw columns are masked until the reason is given, once per session,
as on the DLQ (leads/masking.py)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from leads.masking import PiiMaskingMixin
from pipeline.models import LeadStaging


@admin.register(LeadStaging)
class LeadStagingAdmin(PiiMaskingMixin, admin.ModelAdmin):
    pii_fields = ("email", "phone", "raw", "melissa_payload")
    pii_reveal_scope = "session"
    pii_via = "admin.staging"
    list_display = ("upload_link", "line_number", "addr_hash", "reject_reason", "created_at")
    search_fields = ("upload__id", "mak", "apn")
    raw_id_fields = ("upload",)
    list_select_related = ("upload__partner",)

    @admin.display(description="upload", ordering="upload")
    def upload_link(self, obj):
        url = reverse("admin:pipeline_upload_change", args=[obj.upload_id])
        return format_html('<a href="{}">{}</a>', url, obj.upload.display_name)
