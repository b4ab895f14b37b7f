"""The DLQ in the admin: triage of what the pipeline could not finish, and the registration of every
package's admin (intake, ingest, campaigns, monitoring).

A DLQ row's payload is a raw row of a partner's file: personal data. Ops are asked once per session why they need
it (leads/masking.py, recorded as an access record); until then payloads are hidden and e-mail addresses and
phone numbers in reasons are masked, on every screen and in the export.

A rejected file row is fixed as a form (pipeline/dlq_forms.py): its cells under the lead fields they map to, the
partner's header beside each, what is wrong next to the field that causes it; "Save and reprocess", "Save and next
open item", discard with a note. The list opens on the open items, with a one-line preview of each row and the
upload's partner, grouped by reason with counts; one field can be set across many rows before a bulk reprocess.

A thin caller: reprocessing goes through the ingestion service (the same code path as an upload),
discarding and payload corrections through pipeline/dlq.py.
"""

from __future__ import annotations

import json
import logging
import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from leads.masking import PiiMaskingMixin, mask_text
from pipeline.campaigns import admin as campaigns_admin  # noqa: F401  (registers its models)
from pipeline.dlq import CLOSED_STATUSES, OPEN_STATUSES, DLQError, dlq_discard, dlq_update_payload
from pipeline.dlq_actions import DOMAIN_ERRORS, DLQBulkActions, describe
from pipeline.dlq_forms import DiscardForm, DLQRowForm, OpenFilter, ReasonFilter
from pipeline.duplicates import admin as duplicates_admin  # noqa: F401
from pipeline.experiments import admin as experiments_admin  # noqa: F401
from pipeline.ingest import admin as ingest_admin  # noqa: F401
from pipeline.ingest.services import RowStillInvalid, dlq_row_reprocess
from pipeline.ingest.triage import editable, row_preview
from pipeline.intake import admin as intake_admin  # noqa: F401
from pipeline.intake.admin import partner_uploads_url, upload_links
from pipeline.models import DLQSource, PipelineDLQ
from pipeline.monitoring import admin as monitoring_admin  # noqa: F401
from pipeline.sms import admin as sms_admin  # noqa: F401

logger = logging.getLogger(__name__)


def upload_dlq_url(upload_id) -> str:
    """The DLQ rows of one upload (drill-down from the uploads admin)."""
    return f"{reverse('admin:pipeline_pipelinedlq_changelist')}?upload__exact={upload_id}&state=all"


def upload_events_url(upload_id) -> str:
    """The events of one upload (drill-down from the uploads admin)."""
    return f"{reverse('admin:equity_connect_pipelineevent_changelist')}?upload_id__exact={upload_id}"


# --- DLQ ---------------------------------------------------------------------------------------------------------


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


def next_open_item(after: PipelineDLQ) -> PipelineDLQ | None:
    """The next open item to triage after `after` (by id, wrapping round to the first); None when it was the last."""
    open_items = PipelineDLQ.objects.filter(status__in=OPEN_STATUSES).exclude(pk=after.pk).order_by("pk")
    return open_items.filter(pk__gt=after.pk).first() or open_items.first()


@admin.register(PipelineDLQ)
class PipelineDLQAdmin(DLQBulkActions, PiiMaskingMixin, admin.ModelAdmin):
    pii_fields = ("payload", "reason", "error_detail")
    pii_swaps = {"short_reason": "masked_short_reason", "preview": "masked_preview"}
    pii_reveal_scope = "session"
    pii_via = "admin.dlq"
    list_display = (
        "id",
        "preview",
        "short_reason",
        "status",
        "age",
        "partner",
        "upload_link",
        "line_number",
        "attempts",
        "resolution_summary",
    )
    list_display_links = ("id",)
    list_filter = (
        OpenFilter,
        ReasonFilter,
        "source",
        AgeFilter,
        ("upload__partner", admin.RelatedOnlyFieldListFilter),
        "resolution",
    )
    search_fields = ("reason", "error_detail")  # the resolution note is encrypted
    list_select_related = ("upload__partner", "resolved_by")
    list_per_page = 50
    date_hierarchy = "created_at"
    actions = ("reprocess_selected", "set_field_selected", "discard_selected", "export_csv")
    triage_template = "admin/pipeline/pipelinedlq/triage.html"

    # Rows are written by the pipeline; people fix, reprocess or discard them, never add or delete.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def pii_mask(self, name, value):
        if name == "payload":
            return "hidden: a raw row of a partner's file (personal data)"
        return mask_text(value)

    @admin.display(description="reason")
    def masked_short_reason(self, obj):
        return self.short_reason(obj) and mask_text(self.short_reason(obj))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.lstrip("#").isdigit():
            return queryset.filter(pk=int(term.lstrip("#"))), False
        try:
            return queryset.filter(upload_id=uuid.UUID(term)), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    # --- the list --------------------------------------------------------------------------------------------------

    @admin.display(description="row")
    def preview(self, obj):
        return row_preview(obj.payload, masked=False) if obj.source == DLQSource.UPLOAD_ROW else "—"

    @admin.display(description="row")
    def masked_preview(self, obj):
        return row_preview(obj.payload, masked=True) if obj.source == DLQSource.UPLOAD_ROW else "—"

    @admin.display(description="reason")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 80 else f"{obj.reason[:77]}…"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at, timezone.now()).split(",")[0]

    @admin.display(description="partner", ordering="upload__partner__name")
    def partner(self, obj):
        if obj.upload_id is None or obj.upload.partner_id is None:
            return "—"
        return format_html(
            '<a href="{}" title="this partner\'s uploads">{}</a>',
            partner_uploads_url(obj.upload.partner_id),
            obj.upload.partner.name,
        )

    @admin.display(description="upload", ordering="upload")
    def upload_link(self, obj):
        if obj.upload_id is None:
            return "—"
        return format_html(
            '<a href="{}" title="{}">{}</a> (<a href="{}">its DLQ rows</a> · <a href="{}">events</a>)',
            reverse("admin:pipeline_upload_change", args=[obj.upload_id]),
            obj.upload.display_name,
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

    # --- the triage page: the row as a form ----------------------------------------------------------------------

    def get_object(self, request, object_id, from_field=None):
        try:
            return PipelineDLQ.objects.select_related("upload__partner", "resolved_by", "lead", "broker").get(
                pk=int(object_id)
            )
        except (ValueError, PipelineDLQ.DoesNotExist):
            return None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        item = self.get_object(request, unquote(object_id))
        if item is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, item):
            raise PermissionDenied
        visible = self.pii_visible(request)
        fixable = item.source == DLQSource.UPLOAD_ROW and item.status not in CLOSED_STATUSES
        rows = item.source == DLQSource.UPLOAD_ROW and editable(item.payload)
        form = DLQRowForm(payload=item.payload, prefix="row") if rows else None
        discard = DiscardForm(prefix="discard")
        problems = form.problems() if form is not None and fixable else {}
        if request.method == "POST":
            if not self.has_change_permission(request, item):
                raise PermissionDenied
            if "_discard" in request.POST:
                discard = DiscardForm(request.POST, prefix="discard")
                if discard.is_valid():
                    try:
                        dlq_discard(item=item, note=discard.cleaned_data["note"], user=request.user)
                    except DLQError as error:
                        self.message_user(request, str(error), messages.ERROR)
                    else:
                        self.message_user(request, f"DLQ item #{item.pk}: discarded.", messages.SUCCESS)
                        return self._after(request, item, go_next=True)
            elif fixable and not visible and "_reprocess" in request.POST:
                # Reprocess as stored: nothing personal is shown or typed.
                self._reprocess_one(request, item)
                return self._after(request, item, go_next="_next" in request.POST)
            elif fixable and visible and form is not None:
                form = DLQRowForm(request.POST, payload=item.payload, prefix="row")
                problems = {}
                if form.is_valid():
                    response = self._save_row(request, item, form)
                    if response is not None:
                        return response
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "title": f"DLQ item #{item.pk}",
            "subtitle": None,
            "opts": self.opts,
            "original": item,
            "item": item,
            "visible": visible,
            "fixable": fixable,
            "form": form,
            "field_rows": form.field_rows(problems=problems) if form is not None else [],
            "discard_form": discard,
            "reason": item.reason if visible else mask_text(item.reason),
            "error_detail": item.error_detail if visible else mask_text(item.error_detail),
            # The raw row in the file's column order (cells past the header last, under `_extra_values`).
            "payload_json": json.dumps(item.payload, indent=2, ensure_ascii=False) if visible else None,
            "reveal_url": None if visible else self.pii_reveal_url(item),
            "masked_labels": ", ".join(self.pii_labels()),
            "can_change": self.has_change_permission(request, item),
            "next_item": next_open_item(item),
            "upload_links": upload_links(item.upload_id) if item.upload_id else None,
            "has_view_permission": True,
        }
        return TemplateResponse(request, self.triage_template, context)

    def _save_row(self, request, item, form):
        """Save the corrected row; with `_reprocess`, send it through the ingestion (and with `_next`, open the next
        open item). Returns the redirect, or None to show the form again with the reason next to its field."""
        payload = form.new_payload
        if "_reprocess" not in request.POST and "_next" not in request.POST:
            try:
                dlq_update_payload(item=item, payload=payload)
            except DLQError as error:
                self.message_user(request, str(error), messages.ERROR)
                return None
            self.message_user(request, f"DLQ item #{item.pk}: saved (not reprocessed yet).", messages.SUCCESS)
            return self._after(request, item, go_next=False)
        try:
            result = dlq_row_reprocess(item, payload=payload, user=request.user)
        except RowStillInvalid as error:
            form.add_reason(str(error))
            self.message_user(request, f"DLQ item #{item.pk}: not reprocessed: {error}", messages.ERROR)
            return None
        except Exception as error:
            if not isinstance(error, DOMAIN_ERRORS):
                logger.exception("DLQ reprocess failed", extra={"dlq_id": item.pk})
            self.message_user(request, f"DLQ item #{item.pk}: not reprocessed: {error}", messages.ERROR)
            return None
        level = messages.SUCCESS if result is not None else messages.INFO
        self.message_user(request, f"DLQ item #{item.pk}: reprocessed ({describe(result)})", level)
        return self._after(request, item, go_next="_next" in request.POST)

    def _after(self, request, item, *, go_next: bool):
        if go_next:
            following = next_open_item(item)
            if following is not None:
                return HttpResponseRedirect(reverse("admin:pipeline_pipelinedlq_change", args=[following.pk]))
            self.message_user(request, "No open item is left.", messages.INFO)
            return HttpResponseRedirect(reverse("admin:pipeline_pipelinedlq_changelist"))
        return HttpResponseRedirect(reverse("admin:pipeline_pipelinedlq_change", args=[item.pk]))

    def _reprocess_one(self, request, obj) -> bool:
        try:
            result = dlq_row_reprocess(obj, user=request.user)
        except Exception as exc:  # staff see the reason; anything but a domain error is also logged
            if not isinstance(exc, DOMAIN_ERRORS):
                logger.exception("DLQ reprocess failed", extra={"dlq_id": obj.pk})
            self.message_user(request, f"DLQ item #{obj.pk}: not reprocessed: {exc}", messages.ERROR)
            return False
        level = messages.SUCCESS if result is not None else messages.INFO
        self.message_user(request, f"DLQ item #{obj.pk}: reprocessed ({describe(result)})", level)
        return True
