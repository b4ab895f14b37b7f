from django.contrib import admin

from pipeline.models import IngestReplayGuard, LeadStaging, Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("id", "partner", "source", "status", "rows_total", "leads_created", "leads_merged",
                    "duplicates_in_file", "rows_rejected", "progress", "created_at")
    list_filter = ("status", "partner")
    search_fields = ("id", "filename", "source", "content_sha256")
    readonly_fields = [field.name for field in Upload._meta.fields]


@admin.register(LeadStaging)
class LeadStagingAdmin(admin.ModelAdmin):
    list_display = ("upload", "line_number", "addr_hash", "reject_reason", "created_at")
    search_fields = ("upload__id", "mak", "apn")
    raw_id_fields = ("upload",)


@admin.register(IngestReplayGuard)
class IngestReplayGuardAdmin(admin.ModelAdmin):
    list_display = ("content_sha256", "upload", "partner", "created_at")
    search_fields = ("content_sha256",)
    raw_id_fields = ("upload",)
