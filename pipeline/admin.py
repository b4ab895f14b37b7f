"""The DLQ in the admin: triage of what the pipeline could not finish, and the registration of every
package's admin (intake, ingest, campaigns, monitoring).

A DLQ row's payload is a raw row of a partner's file: personal data. Ops are asked once per session why they need
it (leads/masking.py, recorded as an access record); until then payloads are hidden and e-mail addresses and
phone numbers in reasons are masked, on every screen and in the export.

A thin caller: reprocessing goes through the ingestion service (the same code path as an upload),
discarding and payload corrections through pipeline/dlq.py.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from equity_connect.spreadsheets import spreadsheet_safe
from leads.access import access_record
from leads.masking import PiiMaskingMixin, mask_text
from pipeline.campaigns import admin as campaigns_admin  # noqa: F401  (registers its models)
from pipeline.dlq import CLOSED_STATUSES, DLQError, dlq_discard, dlq_update_payload
from pipeline.duplicates import admin as duplicates_admin  # noqa: F401
from pipeline.experiments import admin as experiments_admin  # noqa: F401
from pipeline.ingest import admin as ingest_admin  # noqa: F401
from pipeline.ingest.services import IngestError, dlq_row_reprocess
from pipeline.intake import admin as intake_admin  # noqa: F401
from pipeline.models import PipelineDLQ
from pipeline.monitoring import admin as monitoring_admin  # noqa: F401
from pipeline.sms import admin as sms_admin  # noqa: F401

logger = logging.getLogger(__name__)

# Errors whose message is meant for the person (shown, not logged as a crash).
DOMAIN_ERRORS = (DLQError, IngestError)


def upload_dlq_url(upload_id) -> str:
    """The DLQ rows of one upload (drill-down from the uploads admin)."""
    return f"{reverse('admin:pipeline_pipelinedlq_changelist')}?upload__exact={upload_id}"


def upload_events_url(upload_id) -> str:
    """The events of one upload (drill-down from the uploads admin)."""
    return f"{reverse('admin:equity_connect_pipelineevent_changelist')}?upload_id__exact={upload_id}"


def _describe(result) -> str:
    """The ingestion service returns the lead's id, or None when the item was already closed."""
    if result is None:
        return "it was already closed: nothing changed"
    return f"lead {result}"


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
class PipelineDLQAdmin(PiiMaskingMixin, admin.ModelAdmin):
    pii_fields = ("payload", "reason", "error_detail")
    pii_swaps = {"short_reason": "masked_short_reason", "payload_pretty": None}
    pii_reveal_scope = "session"
    pii_via = "admin.dlq"
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
    search_fields = ("reason", "error_detail")  # the resolution note is encrypted
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
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.status in CLOSED_STATUSES:
            return [(name, {**o, "fields": [f for f in o["fields"] if f != "payload"]}) for name, o in fieldsets]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status in CLOSED_STATUSES:
            return (*readonly, "payload")
        return readonly

    def pii_mask(self, name, value):
        if name == "payload":
            return "hidden: a raw row of a partner's file (personal data)"
        return mask_text(value)

    @admin.display(description="reason")
    def masked_short_reason(self, obj):
        return self.short_reason(obj) and mask_text(self.short_reason(obj))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        try:
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
            result = dlq_row_reprocess(obj, user=request.user)
        except Exception as exc:  # staff see the reason; anything but a domain error is also logged
            if not isinstance(exc, DOMAIN_ERRORS):
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
                result = dlq_row_reprocess(item, user=request.user)
            except Exception as exc:
                if not isinstance(exc, DOMAIN_ERRORS):
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
        items = list(queryset.order_by("pk"))
        visible = self.pii_visible(request)
        for item in items:
            item.shown_reason = item.reason if visible else mask_text(item.reason)
        context = {
            **self.admin_site.each_context(request),
            "title": "Discard DLQ items",
            "opts": self.model._meta,
            "items": items,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/pipeline/pipelinedlq/discard.html", context)

    @admin.action(description="Export selected items as CSV")
    def export_csv(self, request, queryset):
        visible = self.pii_visible(request)
        shown = (lambda name, value: value) if visible else self.pii_mask
        rows = 0
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
                    spreadsheet_safe(value)
                    for value in (
                        item.pk,
                        item.source,
                        item.status,
                        shown("reason", item.reason),
                        item.upload_id,
                        item.line_number,
                        item.attempts,
                        item.created_at.isoformat(),
                        item.resolution,
                        item.resolved_by.get_username() if item.resolved_by else "",
                        item.resolved_at.isoformat() if item.resolved_at else "",
                        item.resolution_note,
                        shown("payload", json.dumps(item.payload, ensure_ascii=False, sort_keys=True)),
                    )
                ]
            )
            rows += 1
        access_record(
            request=request,
            action="export",
            via="admin.dlq_export",
            filters={**{name: request.GET.get(name) for name in request.GET}, "selected": rows},
            row_count=rows,
            detail={} if visible else {"masked": self.pii_labels()},
        )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="dlq-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        return response
