"""Monitoring in the admin: alerts, job heartbeats, and the "run now" buttons on their lists."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from equity_connect.humanise import duration_ms
from pipeline.campaigns.contactable import contactable_leads_refresh_run
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.models import Alert, JobHeartbeat

from .alerts import alerts_evaluate_run


class _RunNowMixin:
    """Buttons on a changelist that POST to a small admin view and come back with a message."""

    run_now: tuple[tuple[str, str], ...] = ()

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        urls = [
            path(
                "run/<slug:job>/",
                self.admin_site.admin_view(require_POST(self.run_now_view)),
                name="{}_{}_run".format(*info),
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        info = self.model._meta.app_label, self.model._meta.model_name
        extra_context = {
            **(extra_context or {}),
            "run_now": [(reverse("admin:{}_{}_run".format(*info), args=[job]), label) for job, label in self.run_now],
        }
        return super().changelist_view(request, extra_context)

    def run_now_view(self, request, job):
        if not self.has_view_permission(request) or not request.user.is_staff:
            return HttpResponse(status=403)
        level, message = run_job_now(job)
        self.message_user(request, message, level)
        info = self.model._meta.app_label, self.model._meta.model_name
        return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))


def _alerts_now() -> tuple[int, str]:
    result = alerts_evaluate_run()
    data = result.data
    if not result.ok:
        return messages.ERROR, f"Alert rules: {result.message}"
    return messages.SUCCESS, (
        f"Alert rules evaluated: fired {data.get('fired') or 'none'}, resolved {data.get('resolved') or 'none'},"
        f" firing {data.get('firing') or 'none'}."
    )


def _mv_refresh_now() -> tuple[int, str]:
    result = contactable_leads_refresh_run()
    return (messages.SUCCESS if result.ok else messages.ERROR), f"MV refresh: {result.message}"


def _feeder_dry_run_now() -> tuple[int, str]:
    result = campaign_feeder_run(dry_run=True)
    return (messages.SUCCESS if result.ok else messages.ERROR), f"Feeder dry run: {result.message}"


# "Run now" buttons: each runs the job's own `*_run` function (its lock, its event, its heartbeat).
RUN_NOW = {"alerts": _alerts_now, "mv_refresh": _mv_refresh_now, "feeder_dry_run": _feeder_dry_run_now}


def run_job_now(job: str) -> tuple[int, str]:
    """Run one job by hand from the admin: (message level, what happened)."""
    run = RUN_NOW.get(job)
    if run is None:
        return messages.ERROR, f"Unknown job {job!r}."
    return run()


@admin.register(Alert)
class AlertAdmin(_RunNowMixin, admin.ModelAdmin):
    list_display = (
        "rule",
        "severity",
        "state",
        "value",
        "threshold",
        "short_message",
        "opened_at",
        "resolved_at",
        "last_notified_at",
    )
    list_filter = ("state", "severity", "rule")
    search_fields = ("rule", "message")
    readonly_fields = (
        "rule",
        "severity",
        "state",
        "value",
        "threshold",
        "message",
        "opened_at",
        "resolved_at",
        "last_notified_at",
    )
    change_list_template = "admin/pipeline/run_now_change_list.html"
    run_now = (("alerts", "Evaluate alert rules now"),)
    date_hierarchy = "opened_at"

    def has_add_permission(self, request):
        return False  # alerts are opened and resolved by their rules

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # an incident's record stays (no "Delete selected")

    @admin.display(description="message")
    def short_message(self, obj):
        return obj.message[:100]


@admin.register(JobHeartbeat)
class JobHeartbeatAdmin(_RunNowMixin, admin.ModelAdmin):
    list_display = ("name", "last_seen_at", "age", "last_status", "last_duration")
    readonly_fields = ("name", "last_seen_at", "last_status", "last_duration_ms")
    change_list_template = "admin/pipeline/run_now_change_list.html"
    run_now = (
        ("mv_refresh", "Refresh the contactable-leads MV now"),
        ("feeder_dry_run", "Campaign feeder: dry run now"),
        ("alerts", "Evaluate alert rules now"),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="age")
    def age(self, obj):
        return timesince(obj.last_seen_at, timezone.now())

    @admin.display(description="last duration", ordering="last_duration_ms")
    def last_duration(self, obj):
        return duration_ms(obj.last_duration_ms)
