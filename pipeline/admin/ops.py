"""Ops in the admin: DLQ triage, the event trail, alerts, job heartbeats and "run now".

The admin is a thin caller: reprocessing goes through the ingestion service (the same code path as an
upload), discarding through `pipeline.dlq`, alert evaluation through `pipeline.alerts`, the MV refresh and
the feeder through the jobs' own entry points.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import io
import json
import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.management import call_command, get_commands
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from pipeline.dlq import CLOSED_STATUSES, DLQError, dlq_discard, dlq_update_payload
from pipeline.models import Alert, JobHeartbeat, PipelineDLQ, PipelineEvent

logger = logging.getLogger(__name__)

# Where the ingestion engineer's `dlq_row_reprocess(item, payload=None, user=None)` may live.
REPROCESS_MODULES = ("pipeline.ingest.services", "pipeline.ingest.reprocess", "pipeline.ingest")


def upload_dlq_url(upload_id) -> str:
    """The DLQ rows of one upload (drill-down from the uploads admin)."""
    return f"{reverse('admin:pipeline_pipelinedlq_changelist')}?upload__exact={upload_id}"


def upload_events_url(upload_id) -> str:
    """The events of one upload (drill-down from the uploads admin)."""
    return f"{reverse('admin:pipeline_pipelineevent_changelist')}?upload_id__exact={upload_id}"


def reprocess_service():
    """The ingestion's one-row reprocess service, or None while it does not exist."""
    for name in REPROCESS_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        service = getattr(module, "dlq_row_reprocess", None)
        if service is not None:
            return service
    return None


def dlq_reprocess(item: PipelineDLQ, *, user) -> object:
    """Call the ingestion service for one item, whichever way its first parameter is declared."""
    service = reprocess_service()
    if service is None:
        raise DLQError("reprocessing is not available: the ingestion service is not installed")
    params = list(inspect.signature(service).parameters.values())
    kwargs = {}
    names = {param.name for param in params}
    if "payload" in names:
        kwargs["payload"] = item.payload
    if "user" in names:
        kwargs["user"] = user
    first = params[0]
    if first.kind == inspect.Parameter.KEYWORD_ONLY:
        return service(**{first.name: item}, **kwargs)
    return service(item, **kwargs)


def _describe(result) -> str:
    """The ingestion service returns the lead's id, or None when the item was already closed."""
    if result is None:
        return "it was already closed: nothing changed"
    return f"lead {result}"


def domain_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is meant for the person (shown, not logged as a crash)."""
    errors: list[type[Exception]] = [DLQError]
    try:
        from pipeline.ingest.services import IngestError
    except ImportError:
        pass
    else:
        errors.append(IngestError)
    return tuple(errors)


def _csv_safe(value) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: quote them."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- DLQ ------------------------------------------------------------------------------------------------


class PrettyJSONField(forms.JSONField):
    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


class DLQItemForm(forms.ModelForm):
    payload = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "style": "font-family: monospace;"}),
        help_text="Correct the row (e.g. the phone or the address), then “Save and reprocess”.",
    )

    class Meta:
        model = PipelineDLQ
        fields = ("payload",)

    def clean_payload(self):
        payload = self.cleaned_data["payload"]
        if not isinstance(payload, dict):
            raise forms.ValidationError("The payload must be a JSON object.")
        return payload


class DiscardForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        required=True,
        strip=True,
        help_text="Why these items are being discarded (kept with each item).",
    )


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return (("1h", "under 1 hour"), ("1d", "under 1 day"), ("7d", "over 7 days"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "1h":
            return queryset.filter(created_at__gte=now - timezone.timedelta(hours=1))
        if self.value() == "1d":
            return queryset.filter(created_at__gte=now - timezone.timedelta(days=1))
        if self.value() == "7d":
            return queryset.filter(created_at__lt=now - timezone.timedelta(days=7))
        return queryset


@admin.register(PipelineDLQ)
class PipelineDLQAdmin(admin.ModelAdmin):
    form = DLQItemForm
    list_display = (
        "id",
        "source",
        "short_reason",
        "status",
        "age",
        "attempts",
        "upload_link",
        "line_number",
        "resolution_summary",
    )
    list_display_links = ("id", "short_reason")
    list_filter = ("status", "source", AgeFilter, "resolution")
    search_fields = ("reason", "error_detail", "resolution_note")
    list_select_related = ("upload", "resolved_by")
    list_per_page = 50
    actions = ("reprocess_selected", "discard_selected", "export_csv")
    change_form_template = "admin/pipeline/pipelinedlq/change_form.html"
    fieldsets = (
        (
            None,
            {"fields": ("source", "status", "reason", "error_detail", "upload_link", "line_number", "lead", "broker")},
        ),
        ("Payload", {"fields": ("payload_pretty", "payload")}),
        ("Retries", {"fields": ("attempts", "max_attempts", "retry_after")}),
        ("Resolution", {"fields": ("resolution", "resolution_note", "resolved_by", "resolved_at")}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (
        "source",
        "status",
        "reason",
        "error_detail",
        "upload_link",
        "line_number",
        "lead",
        "broker",
        "payload_pretty",
        "attempts",
        "max_attempts",
        "retry_after",
        "resolution",
        "resolution_note",
        "resolved_by",
        "resolved_at",
        "created_at",
        "updated_at",
    )

    # Rows are written by the pipeline; people reprocess or discard them, never add or delete.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.status in CLOSED_STATUSES:
            return [(name, {"fields": [f for f in opts["fields"] if f != "payload"]}) for name, opts in self.fieldsets]
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status in CLOSED_STATUSES:
            return (*self.readonly_fields, "payload")
        return self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        try:
            import uuid

            return queryset.filter(upload_id=uuid.UUID(term)), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 80 else f"{obj.reason[:77]}…"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at, timezone.now()).split(",")[0]

    @admin.display(description="upload", ordering="upload")
    def upload_link(self, obj):
        if obj.upload_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> (<a href="{}">its DLQ rows</a> · <a href="{}">events</a>)',
            reverse("admin:pipeline_upload_change", args=[obj.upload_id]),
            str(obj.upload_id)[:8],
            upload_dlq_url(obj.upload_id),
            upload_events_url(obj.upload_id),
        )

    @admin.display(description="resolution")
    def resolution_summary(self, obj):
        if not obj.resolved_at:
            return "—"
        who = obj.resolved_by.get_username() if obj.resolved_by else "pipeline"
        return f"{obj.resolution or obj.status} by {who}, {obj.resolved_at:%Y-%m-%d %H:%M}"

    @admin.display(description="payload (read-only view)")
    def payload_pretty(self, obj):
        return format_html(
            '<pre style="white-space: pre-wrap; margin: 0;">{}</pre>',
            json.dumps(obj.payload, indent=2, ensure_ascii=False, sort_keys=True),
        )

    def save_model(self, request, obj, form, change):
        # One write path: the payload correction goes through the DLQ module.
        if "payload" in form.cleaned_data and obj.status not in CLOSED_STATUSES:
            dlq_update_payload(item=obj, payload=form.cleaned_data["payload"])

    def response_change(self, request, obj):
        if "_reprocess" in request.POST:
            self._reprocess_one(request, obj)
            return HttpResponseRedirect(reverse("admin:pipeline_pipelinedlq_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def _reprocess_one(self, request, obj) -> bool:
        try:
            result = dlq_reprocess(obj, user=request.user)
        except Exception as exc:  # staff see the reason; anything but a domain error is also logged
            if not isinstance(exc, domain_errors()):
                logger.exception("DLQ reprocess failed", extra={"dlq_id": obj.pk})
            self.message_user(request, f"DLQ item #{obj.pk}: not reprocessed: {exc}", messages.ERROR)
            return False
        level = messages.SUCCESS if result is not None else messages.INFO
        self.message_user(request, f"DLQ item #{obj.pk}: reprocessed ({_describe(result)})", level)
        return True

    @admin.action(description="Reprocess selected items through the ingestion")
    def reprocess_selected(self, request, queryset):
        done = failed = skipped = 0
        for item in queryset.order_by("pk"):
            if item.status in CLOSED_STATUSES:
                skipped += 1
                continue
            try:
                result = dlq_reprocess(item, user=request.user)
            except Exception as exc:
                if not isinstance(exc, domain_errors()):
                    logger.exception("DLQ reprocess failed", extra={"dlq_id": item.pk})
                failed += 1
                self.message_user(request, f"DLQ item #{item.pk}: not reprocessed: {exc}", messages.ERROR)
                continue
            if result is None:
                skipped += 1
            else:
                done += 1
        self.message_user(
            request,
            f"Reprocessed {done} item(s); {failed} failed; {skipped} already closed.",
            messages.SUCCESS if not failed else messages.WARNING,
        )

    @admin.action(description="Discard selected items (a note is required)…")
    def discard_selected(self, request, queryset):
        form = DiscardForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            discarded = 0
            for item in queryset.order_by("pk"):
                try:
                    dlq_discard(item=item, note=form.cleaned_data["note"], user=request.user)
                    discarded += 1
                except DLQError as exc:
                    self.message_user(request, str(exc), messages.WARNING)
            self.message_user(request, f"Discarded {discarded} item(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Discard DLQ items",
            "opts": self.model._meta,
            "items": queryset.order_by("pk"),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/pipeline/pipelinedlq/discard.html", context)

    @admin.action(description="Export selected items as CSV")
    def export_csv(self, request, queryset):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "id",
                "source",
                "status",
                "reason",
                "upload_id",
                "line_number",
                "attempts",
                "created_at",
                "resolution",
                "resolved_by",
                "resolved_at",
                "resolution_note",
                "payload",
            ]
        )
        for item in queryset.select_related("resolved_by").order_by("pk"):
            writer.writerow(
                [
                    _csv_safe(value)
                    for value in (
                        item.pk,
                        item.source,
                        item.status,
                        item.reason,
                        item.upload_id,
                        item.line_number,
                        item.attempts,
                        item.created_at.isoformat(),
                        item.resolution,
                        item.resolved_by.get_username() if item.resolved_by else "",
                        item.resolved_at.isoformat() if item.resolved_at else "",
                        item.resolution_note,
                        json.dumps(item.payload, ensure_ascii=False, sort_keys=True),
                    )
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="dlq-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        return response


# --- events ---------------------------------------------------------------------------------------------


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
        import uuid

        if not search_term.strip():
            return queryset, False
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return queryset.none(), False
        from django.db.models import Q

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


# --- alerts ---------------------------------------------------------------------------------------------


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


def run_job_now(job: str) -> tuple[int, str]:
    """Run one job by hand from the admin: (message level, what happened)."""
    if job == "alerts":
        from pipeline.alerts import alerts_evaluate

        summary = alerts_evaluate()
        return messages.SUCCESS, (
            f"Alert rules evaluated: fired {summary['fired'] or 'none'}, resolved {summary['resolved'] or 'none'},"
            f" firing {summary['firing'] or 'none'}."
        )
    if job == "mv_refresh":
        try:
            from pipeline.jobs import contactable_leads_refresh_run
        except ImportError:
            return messages.ERROR, "The MV refresh job is not installed."
        result = contactable_leads_refresh_run()
        return (messages.SUCCESS if result.ok else messages.ERROR), f"MV refresh: {result.message}"
    if job == "feeder_dry_run":
        if "run_campaign_feeder" not in get_commands():
            return messages.ERROR, "The campaign feeder is not installed."
        out = io.StringIO()
        try:
            call_command("run_campaign_feeder", "--dry-run", stdout=out, stderr=out)
        except Exception as exc:
            return messages.ERROR, f"Feeder dry run failed: {exc}"
        return messages.SUCCESS, f"Feeder dry run: {out.getvalue().strip() or 'done'}"
    return messages.ERROR, f"Unknown job {job!r}."


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

    def has_add_permission(self, request):
        return False  # alerts are opened and resolved by their rules

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="message")
    def short_message(self, obj):
        return obj.message[:100]


@admin.register(JobHeartbeat)
class JobHeartbeatAdmin(_RunNowMixin, admin.ModelAdmin):
    list_display = ("name", "last_seen_at", "age", "last_status", "last_duration_ms")
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

    @admin.display(description="age")
    def age(self, obj):
        return timesince(obj.last_seen_at, timezone.now())
