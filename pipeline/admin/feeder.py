from django.contrib import admin

from pipeline.models import FeederRun, WebhookDelivery


@admin.register(FeederRun)
class FeederRunAdmin(admin.ModelAdmin):
    list_display = ("business_date", "status", "dry_run", "leads_claimed", "leads_pushed", "leads_skipped",
                    "started_at", "finished_at")
    list_filter = ("status", "dry_run")
    date_hierarchy = "business_date"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "lead_email", "lead", "received_at")
    list_filter = ("event_type",)
    search_fields = ("lead_email", "dedupe_hash")
    raw_id_fields = ("lead",)
