"""Uploads in the admin: a record of what was received, read-only (the pipeline writes it), named by partner, file
and time; its page shows a progress bar that follows a running upload by itself (static/ops/upload_progress.js
polls `<id>/status/`, a small JSON view), the steps with their durations, and links to the upload's DLQ rows,
possible duplicates, events and created leads. Cancel and re-run are thin callers of pipeline/ingest/control.py.

"Upload a CSV" for staff runs the same pipeline as the signed API (replay guard, stored file, ingestion task),
authenticated by the staff session instead of a signature."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from equity_connect.humanise import duration_ms, number, percent
from pipeline.ingest.control import UNFINISHED, UploadControlError, upload_cancel, upload_rerun
from pipeline.models import IngestReplayGuard, Upload, UploadStatus
from security.models import Broker
from security.request_body import BodyTooLarge, body_spool

from .selectors import upload_progress_status, upload_steps
from .services import UploadRejected, upload_accept


def upload_links(upload_id) -> dict[str, str]:
    """Where an upload's rows went: its DLQ rows, possible duplicates, events and created leads."""
    return {
        "dlq": f"{reverse('admin:pipeline_pipelinedlq_changelist')}?upload__exact={upload_id}&state=all",
        "open_dlq": f"{reverse('admin:pipeline_pipelinedlq_changelist')}?upload__exact={upload_id}",
        "duplicates": (
            f"{reverse('admin:pipeline_possibleduplicate_changelist')}?upload__id__exact={upload_id}&status=all"
        ),
        "events": f"{reverse('admin:equity_connect_pipelineevent_changelist')}?upload_id__exact={upload_id}",
        "leads": f"{reverse('admin:leads_lead_changelist')}?source_upload_id__exact={upload_id}",
    }


def partner_uploads_url(partner_id) -> str:
    """A partner's uploads (ops may not open the partner itself: keys live there)."""
    return f"{reverse('admin:pipeline_upload_changelist')}?partner__id__exact={partner_id}"


class StaffUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV: canonical or PropStream headers")
    broker = forms.ModelChoiceField(
        queryset=Broker.objects.active(),
        required=False,
        help_text="Assign every lead to this broker (else territory rules)",
    )
    source = forms.CharField(required=False, max_length=200, initial="admin-upload")


RUN_FIELDS = ("status", "attempts", "error_message", "cancelled", "created_at", "started_at", "finished_at")
RUN_FIELDS += ("enqueued_at",)


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "status_progress",
        "rows",
        "created",
        "merged",
        "in_file_duplicates",
        "rejected",
        "took",
    )
    list_display_links = ("name",)
    list_filter = ("status", "partner")
    list_select_related = ("partner", "uploaded_by")
    search_fields = ("id", "filename", "source", "content_sha256")
    search_help_text = "An upload id, a file name, a source or a content hash."
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = ("rerun_selected", "cancel_selected")
    change_list_template = "admin/pipeline/upload/change_list.html"
    change_form_template = "admin/pipeline/upload/change_form.html"
    fieldsets = (
        (None, {"fields": ("id", "partner_link", "partner_key_link", "uploaded_by_link", "broker_link", "source")}),
        ("File", {"fields": ("filename", "size", "content_sha256", "encoding", "columns", "unrecognised_columns")}),
        ("Run", {"fields": RUN_FIELDS}),
    )
    readonly_fields = (
        "id",
        "partner_link",
        "partner_key_link",
        "uploaded_by_link",
        "broker_link",
        "source",
        "filename",
        "size",
        "content_sha256",
        "encoding",
        "columns",
        "unrecognised_columns",
        "status",
        "attempts",
        "error_message",
        "cancelled",
        "created_at",
        "started_at",
        "finished_at",
        "enqueued_at",
    )

    # A record of what was received: the pipeline writes it; people cancel or re-run, never edit or delete.
    def has_add_permission(self, request):
        return False  # uploads are made with "Upload a CSV", which runs the pipeline

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_control_permission(self, request, obj=None):
        """Cancel and re-run: staff who may change uploads (the page itself stays read-only)."""
        return request.user.is_staff and request.user.has_perm("pipeline.change_upload")

    # --- the list ----------------------------------------------------------------------------------------------

    @admin.display(description="upload", ordering="created_at")
    def name(self, obj):
        who = obj.uploaded_by.get_username() if obj.uploaded_by_id else obj.source
        return format_html(
            '<span class="upload-name">{}</span><div class="upload-sub">{} · {}</div>',
            obj.display_name,
            who or "—",
            f"{obj.size_bytes / 1_000_000:,.1f} MB",
        )

    @admin.display(description="status", ordering="status")
    def status_progress(self, obj):
        if obj.status in UNFINISHED:
            return format_html(
                '{} <progress max="100" value="{}" class="upload-mini-progress"></progress> {}',
                obj.status,
                f"{obj.progress * 100:.0f}",
                percent(obj.progress),
            )
        if obj.cancelled_at:
            return format_html('<span title="{}">cancelled</span>', obj.error_message)
        if obj.status == UploadStatus.FAILED:
            return format_html('<span title="{}">failed</span>', obj.error_message)
        return obj.status

    @admin.display(description="rows", ordering="rows_total")
    def rows(self, obj):
        return number(obj.rows_total)

    @admin.display(description="created", ordering="leads_created")
    def created(self, obj):
        return number(obj.leads_created)

    @admin.display(description="merged", ordering="leads_merged")
    def merged(self, obj):
        return number(obj.leads_merged)

    @admin.display(description="dup. in file", ordering="duplicates_in_file")
    def in_file_duplicates(self, obj):
        return number(obj.duplicates_in_file)

    @admin.display(description="rejected", ordering="rows_rejected")
    def rejected(self, obj):
        if not obj.rows_rejected:
            return number(obj.rows_rejected) + (f" ({obj.rows_recovered:,} fixed)" if obj.rows_recovered else "")
        return format_html(
            '<a href="{}">{}</a>{}',
            upload_links(obj.pk)["open_dlq"],
            number(obj.rows_rejected),
            f" ({obj.rows_recovered:,} fixed)" if obj.rows_recovered else "",
        )

    @admin.display(description="took")
    def took(self, obj):
        return duration_ms(obj.duration_ms)

    # --- the page ------------------------------------------------------------------------------------------------

    def _admin_link(self, name: str, obj_id, text) -> str:
        if obj_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse(f"admin:{name}_change", args=[obj_id]), text)

    @admin.display(description="partner")
    def partner_link(self, obj):
        if not obj.partner_id:
            return "—"
        return format_html('<a href="{}">{}</a> (its uploads)', partner_uploads_url(obj.partner_id), obj.partner)

    @admin.display(description="partner key")
    def partner_key_link(self, obj):
        return (
            self._admin_link("security_partnerkey", obj.partner_key_id, obj.partner_key) if obj.partner_key_id else "—"
        )

    @admin.display(description="uploaded by (staff)")
    def uploaded_by_link(self, obj):
        if not obj.uploaded_by_id:
            return "—"
        return self._admin_link("auth_user", obj.uploaded_by_id, obj.uploaded_by.get_username())

    @admin.display(description="broker")
    def broker_link(self, obj):
        return self._admin_link("security_broker", obj.broker_id, obj.broker) if obj.broker_id else "—"

    @admin.display(description="size")
    def size(self, obj):
        return f"{number(obj.size_bytes)} bytes"

    @admin.display(description="cancelled")
    def cancelled(self, obj):
        if not obj.cancelled_at:
            return "—"
        who = obj.cancelled_by.get_username() if obj.cancelled_by_id else "—"
        return f"by {who}, {timezone.localtime(obj.cancelled_at):%Y-%m-%d %H:%M:%S}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        upload = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if upload is not None:
            extra.update(
                {
                    "upload": upload,
                    "status": upload_progress_status(upload),
                    "status_url": reverse("admin:pipeline_upload_status", args=[upload.pk]),
                    "links": upload_links(upload.pk),
                    "steps": upload_steps(upload),
                    "can_control": self.has_control_permission(request, upload),
                    "can_cancel": upload.status in UNFINISHED,
                    "can_rerun": upload.status != UploadStatus.DONE,
                    "cancel_url": reverse("admin:pipeline_upload_cancel", args=[upload.pk]),
                    "rerun_url": reverse("admin:pipeline_upload_rerun", args=[upload.pk]),
                }
            )
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload-csv/", view(self.upload_csv_view), name="pipeline_upload_csv"),
            path("<uuid:upload_id>/status/", view(self.status_view), name="pipeline_upload_status"),
            path("<uuid:upload_id>/cancel/", view(require_POST(self.cancel_view)), name="pipeline_upload_cancel"),
            path("<uuid:upload_id>/rerun/", view(require_POST(self.rerun_view)), name="pipeline_upload_rerun"),
            *super().get_urls(),
        ]

    def status_view(self, request, upload_id):
        """The progress bar's JSON: status, progress, counts (read-only, polled every second while running)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        upload = Upload.objects.filter(pk=upload_id).first()
        if upload is None:
            raise Http404
        response = JsonResponse(upload_progress_status(upload))
        response["Cache-Control"] = "no-store"
        return response

    def _control(self, request, upload_id, action, done_text: str):
        if not self.has_control_permission(request):
            raise PermissionDenied
        try:
            upload = action(upload_id=upload_id, user=request.user)
        except Upload.DoesNotExist as error:
            raise Http404 from error
        except UploadControlError as error:
            self.message_user(request, f"Upload {upload_id}: {error}", messages.ERROR)
        else:
            self.message_user(request, done_text.format(upload=upload), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:pipeline_upload_change", args=[upload_id]))

    def cancel_view(self, request, upload_id):
        return self._control(
            request, upload_id, upload_cancel, "{upload.display_name}: cancelled; its replay guard is released."
        )

    def rerun_view(self, request, upload_id):
        return self._control(request, upload_id, upload_rerun, "{upload.display_name}: queued again.")

    @admin.action(description="Re-run the selected failed or stuck uploads", permissions=["control"])
    def rerun_selected(self, request, queryset):
        self._each(request, queryset, upload_rerun, "Queued {} upload(s) again.")

    @admin.action(description="Cancel the selected received or processing uploads", permissions=["control"])
    def cancel_selected(self, request, queryset):
        self._each(request, queryset, upload_cancel, "Cancelled {} upload(s).")

    def _each(self, request, queryset, action, done_text: str) -> None:
        done = 0
        for upload_id in list(queryset.order_by("created_at").values_list("pk", flat=True)):
            try:
                action(upload_id=upload_id, user=request.user)
            except UploadControlError as error:
                self.message_user(request, f"Upload {upload_id}: {error}", messages.WARNING)
            else:
                done += 1
        self.message_user(request, done_text.format(done), messages.SUCCESS if done else messages.WARNING)

    # --- "Upload a CSV" -----------------------------------------------------------------------------------------

    def upload_csv_view(self, request):
        if not request.user.has_perm("pipeline.change_upload"):
            return redirect("admin:index")
        form = StaffUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            uploaded = form.cleaned_data["file"]
            uploaded.seek(0)
            try:
                body = body_spool(uploaded.read, max_bytes=settings.UPLOAD_MAX_BYTES)
                upload = upload_accept(
                    body=body.file,
                    content_sha256=body.sha256,
                    size_bytes=body.size,
                    filename=uploaded.name,
                    source=form.cleaned_data["source"] or "admin-upload",
                    broker=form.cleaned_data["broker"],
                    uploaded_by=request.user,
                )
            except BodyTooLarge as error:
                self.message_user(request, str(error), messages.ERROR)
            except UploadRejected as error:
                if error.upload_id:
                    url = reverse("admin:pipeline_upload_change", args=[error.upload_id])
                    self.message_user(
                        request,
                        format_html(
                            'This file was already received: <a href="{}">upload {}</a>.', url, error.upload_id
                        ),
                        messages.ERROR,
                    )
                else:
                    self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{upload.display_name} received; processing in the background.")
                return redirect("admin:pipeline_upload_change", upload.id)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Upload a CSV",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/pipeline/upload/upload_csv.html", context)


@admin.register(IngestReplayGuard)
class IngestReplayGuardAdmin(admin.ModelAdmin):
    """Which content each partner sent in the last REPLAY_GUARD_DAYS: written by the intake, released by a failure
    or a cancel; read-only here."""

    list_display = ("content_sha256", "upload_link", "partner_link", "created_at")
    search_fields = ("content_sha256",)
    list_select_related = ("upload__partner", "partner")
    readonly_fields = ("content_sha256", "upload_link", "partner_link", "created_at")
    fields = readonly_fields

    @admin.display(description="upload", ordering="upload")
    def upload_link(self, obj):
        if obj.upload_id is None:
            return "—"
        url = reverse("admin:pipeline_upload_change", args=[obj.upload_id])
        return format_html('<a href="{}">{}</a>', url, obj.upload.display_name)

    @admin.display(description="partner", ordering="partner__name")
    def partner_link(self, obj):
        if obj.partner_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', partner_uploads_url(obj.partner_id), obj.partner)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
