"""The DLQ list's bulk actions: reprocess, set one field across rows, discard with a note, export as CSV. A mixin
of the DLQ admin (pipeline/admin.py); thin callers of the ingestion service and the DLQ recorder, as the triage page
is. Exports mask personal data unless the DLQ's was revealed, and are recorded as access records."""

from __future__ import annotations

import csv
import io
import json
import logging

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from equity_connect.spreadsheets import spreadsheet_safe
from leads.access import access_record
from leads.masking import mask_text
from pipeline.dlq import CLOSED_STATUSES, DLQError, dlq_discard, dlq_update_payload
from pipeline.dlq_forms import DiscardForm, SetFieldForm
from pipeline.ingest.services import IngestError, dlq_row_reprocess
from pipeline.ingest.triage import editable, payload_set_field
from pipeline.models import DLQSource

logger = logging.getLogger("pipeline.admin")

# Errors whose message is meant for the person (shown, not logged as a crash).
DOMAIN_ERRORS = (DLQError, IngestError)


def describe(result) -> str:
    """The ingestion service returns the lead's id, or None when the item was already closed."""
    if result is None:
        return "it was already closed: nothing changed"
    return f"lead {result}"


class DLQBulkActions:
    @admin.action(description="Set one field on the selected rows…", permissions=["change"])
    def set_field_selected(self, request, queryset):
        form = SetFieldForm(request.POST if "apply" in request.POST else None)
        items = list(queryset.order_by("pk"))
        if "apply" in request.POST and form.is_valid():
            field, value = form.cleaned_data["field"], form.cleaned_data["value"]
            changed, skipped = 0, 0
            for item in items:
                if item.source != DLQSource.UPLOAD_ROW or item.status in CLOSED_STATUSES or not editable(item.payload):
                    skipped += 1
                    continue
                try:
                    dlq_update_payload(item=item, payload=payload_set_field(item.payload, field, value))
                except DLQError as error:
                    skipped += 1
                    self.message_user(request, str(error), messages.WARNING)
                else:
                    changed += 1
            self.message_user(
                request,
                f"Set {field} on {changed:,} row(s)"
                + (f"; skipped {skipped:,} (closed or not a file row)." if skipped else "."),
                messages.SUCCESS if changed else messages.WARNING,
            )
            if "_reprocess" in request.POST:
                return self.reprocess_selected(request, queryset.model.objects.filter(pk__in=[i.pk for i in items]))
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Set one field on the selected DLQ rows",
            "opts": self.model._meta,
            "items": items,
            "form": form,
            "open_rows": sum(
                1 for item in items if item.source == DLQSource.UPLOAD_ROW and item.status not in CLOSED_STATUSES
            ),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/pipeline/pipelinedlq/set_field.html", context)

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
