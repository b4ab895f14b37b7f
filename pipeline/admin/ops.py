from django.contrib import admin

from pipeline.models import Alert, JobHeartbeat, PipelineDLQ, PipelineEvent


@admin.register(PipelineDLQ)
class PipelineDLQAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "reason", "status", "attempts", "upload", "line_number", "created_at")
    list_filter = ("source", "status")
    search_fields = ("reason", "upload__id")
    raw_id_fields = ("upload", "lead", "broker", "resolved_by")


@admin.register(PipelineEvent)
class PipelineEventAdmin(admin.ModelAdmin):
    list_display = ("event_type", "status", "lead_id", "broker_id", "upload_id", "duration_ms", "created_at")
    list_filter = ("event_type", "status")
    search_fields = ("lead_id", "upload_id", "broker_id")
    show_full_result_count = False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("rule", "severity", "state", "value", "threshold", "opened_at", "resolved_at")
    list_filter = ("state", "severity", "rule")


@admin.register(JobHeartbeat)
class JobHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "last_seen_at", "last_status", "last_duration_ms")
