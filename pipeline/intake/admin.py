"""Uploads in the admin: list with status and counts, and "Upload a CSV" for staff — the same pipeline as
the signed API (replay guard, stored file, ingestion task), authenticated by the staff session instead of
a signature."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from pipeline.models import IngestReplayGuard, Upload
from security.models import Broker
from security.request_body import BodyTooLarge, body_spool

from .services import UploadRejected, upload_accept


class StaffUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV: canonical or PropStream headers")
    broker = forms.ModelChoiceField(
        queryset=Broker.objects.active(),
        required=False,
        help_text="Assign every lead to this broker (else territory rules)",
    )
    source = forms.CharField(required=False, max_length=200, initial="admin-upload")


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "partner",
        "uploaded_by",
        "source",
        "status",
        "rows_total",
        "leads_created",
        "leads_merged",
        "duplicates_in_file",
        "rows_rejected",
        "progress_percent",
        "created_at",
    )
    list_filter = ("status", "partner")
    search_fields = ("id", "filename", "source", "content_sha256")
    readonly_fields = [field.name for field in Upload._meta.fields]
    change_list_template = "admin/pipeline/upload/change_list.html"

    @admin.display(description="progress")
    def progress_percent(self, obj):
        return f"{obj.progress * 100:.0f}%"

    def has_add_permission(self, request):
        return False  # uploads are made with "Upload a CSV" below, which runs the pipeline

    def get_urls(self):
        return [
            path("upload-csv/", self.admin_site.admin_view(self.upload_csv_view), name="pipeline_upload_csv"),
            *super().get_urls(),
        ]

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
                self.message_user(request, f"Upload {upload.id} received; processing in the background.")
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
    list_display = ("content_sha256", "upload", "partner", "created_at")
    search_fields = ("content_sha256",)
    raw_id_fields = ("upload",)
