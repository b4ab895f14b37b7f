"""The privacy requests in the admin (/admin/privacy/): export or erase everything about a person.

For the *admin* role only (superusers and the admin group, equity_connect/staff_roles.py): an ops user gets 403.
Export answers with a zip of the JSON document and the consent proofs; erase first shows a confirmation page
that asks for the e-mail address or phone number once more. Both call the services `manage.py privacy` calls,
which record the access record and the event.
"""

from __future__ import annotations

import io
import zipfile

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from equity_connect.staff_roles import user_is_admin
from pipeline.ingest import normalise

from .erase import person_erase
from .export import person_export
from .person import Person, PrivacyError


class PrivacyRequestForm(forms.Form):
    email = forms.CharField(required=False, max_length=254, label="E-mail address")
    phone = forms.CharField(required=False, max_length=64, label="Phone number")
    action = forms.ChoiceField(choices=(("export", "Export everything about them"), ("erase", "Erase them")))

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["person"] = Person.of(email=cleaned.get("email") or None, phone=cleaned.get("phone") or None)
        except PrivacyError as error:
            raise forms.ValidationError(str(error)) from error
        return cleaned


def _confirmed(request: HttpRequest, person: Person) -> bool:
    again = request.POST.get("confirm_value", "")
    return bool(again) and bool(
        {normalise.email(again), normalise.phone(again)} & ({person.email, person.phone} - {None})
    )


def _privacy_request(request: HttpRequest):
    if not user_is_admin(request.user):
        raise PermissionDenied
    form = PrivacyRequestForm(request.POST or None)
    context = {**admin.site.each_context(request), "title": "Privacy request: a person's data", "form": form}
    if request.method != "POST" or not form.is_valid():
        return TemplateResponse(request, "admin/privacy/request.html", context)
    person = form.cleaned_data["person"]
    if form.cleaned_data["action"] == "export":
        return _export_response(person_export(person=person, request=request))
    if not _confirmed(request, person):
        context["confirm_error"] = "confirm_value" in request.POST
        return TemplateResponse(request, "admin/privacy/erase_confirm.html", {**context, "person": person})
    try:
        result = person_erase(person=person, request=request)
    except PrivacyError as error:
        context["error"] = str(error)
    else:
        context["erased"] = result
        context["form"] = PrivacyRequestForm()
    return TemplateResponse(request, "admin/privacy/request.html", context)


def _export_response(export) -> HttpResponse:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in export.files().items():
            archive.writestr(name, content)
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="privacy-export.zip"'
    response["Cache-Control"] = "no-store"
    return response


privacy_request = admin.site.admin_view(_privacy_request)
