"""Monitoring in the admin: alerts (acknowledge, snooze, thresholds), job heartbeats, and the "run now" buttons."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from equity_connect.humanise import duration_ms
from pipeline.campaigns.contactable import contactable_leads_refresh_run
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.models import Alert, AlertState, AlertThresholdChange, JobHeartbeat

from .alerts import alerts_evaluate_run
from .incidents import AlertActionError, alert_acknowledge, alert_snooze
from .thresholds import THRESHOLDS, ThresholdError, alert_thresholds_save, thresholds_overview


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


SNOOZE_CHOICES = (("1", "1 hour"), ("4", "4 hours"), ("24", "24 hours"), ("72", "3 days"), ("0", "End the snooze"))


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
        "acknowledged",
        "snoozed_until",
        "last_notified_at",
    )
    list_filter = ("state", "severity", "rule", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("rule", "message", "acknowledge_note")
    date_hierarchy = "opened_at"
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
        "acknowledged_at",
        "acknowledged_by",
        "acknowledge_note",
        "snoozed_until",
        "snoozed_by",
    )
    change_list_template = "admin/pipeline/alert/change_list.html"
    change_form_template = "admin/pipeline/alert/change_form.html"
    run_now = (("alerts", "Evaluate alert rules now"),)
    date_hierarchy = "opened_at"
    actions = ("acknowledge_selected",)

    def get_urls(self):
        urls = [
            path(
                "<int:alert_id>/acknowledge/",
                self.admin_site.admin_view(require_POST(self.acknowledge_view)),
                name="pipeline_alert_acknowledge",
            ),
            path(
                "<int:alert_id>/snooze/",
                self.admin_site.admin_view(require_POST(self.snooze_view)),
                name="pipeline_alert_snooze",
            ),
            path(
                "thresholds/",
                self.admin_site.admin_view(self.thresholds_view),
                name="pipeline_alert_thresholds",
            ),
        ]
        return urls + super().get_urls()

    def has_add_permission(self, request):
        return False  # alerts are opened and resolved by their rules

    def has_change_permission(self, request, obj=None):
        return False  # a person acknowledges or snoozes (the buttons below), never edits an alert

    def has_delete_permission(self, request, obj=None):
        return False  # the incident history stays

    def _may_act(self, request) -> bool:
        return request.user.is_staff and self.has_view_permission(request)

    @admin.display(description="message")
    def short_message(self, obj):
        return obj.message[:100]

    @admin.display(description="acknowledged", ordering="acknowledged_at")
    def acknowledged(self, obj):
        if not obj.acknowledged_at:
            return "—"
        who = obj.acknowledged_by.get_username() if obj.acknowledged_by else "?"
        return f"{who}, {timezone.localtime(obj.acknowledged_at):%Y-%m-%d %H:%M}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "snooze_choices": SNOOZE_CHOICES,
            "may_act": self._may_act(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "thresholds_url": reverse("admin:pipeline_alert_thresholds")}
        return super().changelist_view(request, extra_context)

    def _back(self, alert_id):
        return HttpResponseRedirect(reverse("admin:pipeline_alert_change", args=[alert_id]))

    def acknowledge_view(self, request, alert_id):
        if not self._may_act(request):
            return HttpResponse(status=403)
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is None:
            raise Http404("No such alert.")
        try:
            alert_acknowledge(alert=alert, user=request.user, note=request.POST.get("note", ""))
        except AlertActionError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, f"Alert #{alert.pk} ({alert.rule}) acknowledged.", messages.SUCCESS)
        return self._back(alert_id)

    def snooze_view(self, request, alert_id):
        if not self._may_act(request):
            return HttpResponse(status=403)
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is None:
            raise Http404("No such alert.")
        hours = request.POST.get("hours", "")
        if hours not in dict(SNOOZE_CHOICES):
            self.message_user(request, "Choose how long to snooze.", messages.ERROR)
            return self._back(alert_id)
        until = timezone.now() + dt.timedelta(hours=int(hours)) if hours != "0" else None
        try:
            alert_snooze(alert=alert, user=request.user, until=until)
        except AlertActionError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            done = f"snoozed until {timezone.localtime(until):%Y-%m-%d %H:%M}" if until else "no longer snoozed"
            self.message_user(request, f"Rule {alert.rule}: {done}.", messages.SUCCESS)
        return self._back(alert_id)

    @admin.action(description="Acknowledge the selected firing alerts")
    def acknowledge_selected(self, request, queryset):
        done = 0
        for alert in queryset.filter(state=AlertState.FIRING, acknowledged_at__isnull=True):
            alert_acknowledge(alert=alert, user=request.user, note="")
            done += 1
        self.message_user(request, f"Acknowledged {done} alert(s).", messages.SUCCESS)

    def thresholds_view(self, request):
        """Every threshold with the environment's default beside the saved value; saving records each change."""
        if not self._may_act(request):
            return HttpResponse(status=403)
        error = None
        submitted: dict[str, str] = {}
        if request.method == "POST":
            submitted = {spec.name: request.POST.get(spec.name, "") for spec in THRESHOLDS}
            try:
                changes = alert_thresholds_save(values=submitted, user=request.user)
            except ThresholdError as exc:
                error = str(exc)
            else:
                names = ", ".join(change.name for change in changes) or "nothing changed"
                self.message_user(request, f"Thresholds saved: {names}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:pipeline_alert_thresholds"))
        rows = thresholds_overview()
        for row in rows:
            name = row["spec"].name
            row["input"] = submitted[name] if name in submitted else ("" if row["saved"] is None else row["saved"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Alert thresholds",
            "opts": self.model._meta,
            "rows": rows,
            "error": error,
            "history": AlertThresholdChange.objects.select_related("changed_by")[:50],
        }
        return TemplateResponse(request, "admin/pipeline/alert/thresholds.html", context, status=400 if error else 200)


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
