"""Personal data masked for ops in the admin, shown on demand against a reason: one piece every admin that shows a
lead's personal data uses (leads, consent records, possible duplicates, DLQ rows, staging rows).

An admin takes `PiiMaskingMixin` and names its `pii_fields`. For anyone but an admin (equity_connect/staff_roles.py)
those fields are masked in the list, on the change page (read-only there, so a save never touches them) and in
exports. Masked values can be revealed:

- `pii_reveal_scope = "object"`: a "reveal" page per record asks why, writes an access record (`reveal`, the
  reason, the leads concerned) and shows the values on that page only;
- `pii_reveal_scope = "session"` (DLQ triage, whose raw rows are personal data through and through): asked once
  per session, recorded once, then the screen shows everything for the rest of the session.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from equity_connect.staff_roles import user_is_admin

from .access import access_record

MASK = "•••"
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")
SESSION_KEY = "pii_revealed"


def mask_email(value: str) -> str:
    local, _, domain = str(value).partition("@")
    tld = domain.rsplit(".", 1)[1] if "." in domain else ""
    return f"{local[:1]}{MASK}@{domain[:1]}{MASK}" + (f".{tld}" if tld else "")


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", str(value))
    return f"{MASK}{digits[-2:]}" if len(digits) > 4 else MASK


def mask_text(value) -> str:
    """Free text (a DLQ reason, say) with every e-mail address and phone number in it masked."""
    if not value:
        return value
    text = _EMAIL.sub(lambda match: mask_email(match.group()), str(value))
    return _PHONE.sub(lambda match: mask_phone(match.group()), text)


def mask(name: str, value):
    """The masked form of field `name`'s value (empty stays empty, so an absent value still shows as absent)."""
    if value is None or value == "":
        return value
    if "email" in name:
        return mask_email(value)
    if "phone" in name:
        return mask_phone(value)
    return MASK


def masked_name(name: str) -> str:
    return f"masked_{name}"


def session_revealed(request, label: str) -> bool:
    return label in request.session.get(SESSION_KEY, [])


class RevealForm(forms.Form):
    reason = forms.CharField(
        min_length=10,
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why you need to see it (at least 10 characters). It is kept with your name and the time.",
    )


class MaskingResource:
    """For a django-import-export resource: the fields in `masked_fields` (passed by the admin) are masked."""

    def __init__(self, *args, masked_fields=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.masked_fields = set(masked_fields)

    def export_field(self, field, instance, **kwargs):
        value = super().export_field(field, instance, **kwargs)
        name = field.attribute or field.column_name
        return mask(name, value) if name in self.masked_fields else value


class PiiMaskingMixin:
    pii_fields: tuple[str, ...] = ()
    # Other names (display methods) that show personal data: while masked, this name is shown instead (None: left out).
    pii_swaps: dict[str, str | None] = {}
    pii_reveal_scope = "object"
    pii_via = ""  # the access record's `via`, e.g. "admin.lead"
    pii_reveal_template = "admin/pii_reveal.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.pii_fields:
            setattr(self, masked_name(name), self._masked_display(name))

    # --- who sees what --------------------------------------------------------------------------------------

    def pii_visible(self, request) -> bool:
        if user_is_admin(request.user):
            return True
        return self.pii_reveal_scope == "session" and session_revealed(request, self.opts.label_lower)

    def pii_lead_ids(self, obj) -> list:
        """The leads whose data `obj` shows (the access record of a reveal names them)."""
        lead_id = getattr(obj, "lead_id", None)
        return [lead_id] if lead_id else []

    def pii_values(self, obj) -> list[tuple[str, object]]:
        """(label, value) of what a reveal shows."""
        return [(self._label(name), getattr(obj, name)) for name in self.pii_fields]

    def pii_labels(self) -> list[str]:
        """What is masked, in words."""
        return [self._label(name) for name in self.pii_fields]

    def pii_mask(self, name: str, value):
        return mask(name, value)

    def pii_reveal_url(self, obj) -> str:
        info = self.opts.app_label, self.opts.model_name
        if self.pii_reveal_scope == "session":
            back = reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
            return f"{reverse('admin:{}_{}_reveal_session'.format(*info))}?{urlencode({'next': back})}"
        return reverse("admin:{}_{}_reveal".format(*info), args=[obj.pk])

    def _label(self, name: str) -> str:
        return str(self.model._meta.get_field(name).verbose_name)

    def _masked_display(self, name: str):
        def display(obj):
            return self.pii_mask(name, getattr(obj, name))

        display.short_description = self._label(name)
        return display

    def _masked(self, names):
        shown = []
        for name in names:
            if name in self.pii_fields:
                shown.append(masked_name(name))
            elif name in self.pii_swaps:
                shown += [self.pii_swaps[name]] if self.pii_swaps[name] else []
            else:
                shown.append(name)
        return shown

    # --- lists, change pages, exports ----------------------------------------------------------------------

    def get_list_display(self, request):
        names = super().get_list_display(request)
        return names if self.pii_visible(request) else self._masked(names)

    def get_list_display_links(self, request, list_display):
        links = super().get_list_display_links(request, list_display)
        return links if links is None or self.pii_visible(request) else self._masked(links)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.pii_visible(request) or obj is None:
            return fieldsets
        seen = {"pii_reveal"}  # the default fieldset lists the read-only fields again: each name once

        def once(names):
            kept = []
            for name in self._masked(names):
                if name not in seen:
                    seen.add(name)
                    kept.append(name)
            return kept

        masked = [(title, {**options, "fields": once(options["fields"])}) for title, options in fieldsets]
        title, options = masked[0]
        masked[0] = (title, {**options, "fields": ["pii_reveal", *options["fields"]]})
        return masked

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self.pii_visible(request) or obj is None:
            return readonly
        swapped = [name for name in self.pii_swaps.values() if name]
        return [*readonly, "pii_reveal", *(masked_name(name) for name in self.pii_fields), *swapped]

    def get_export_resource_kwargs(self, request, **kwargs):
        resource_kwargs = super().get_export_resource_kwargs(request, **kwargs)
        if not self.pii_visible(request):
            resource_kwargs["masked_fields"] = self.pii_fields
        return resource_kwargs

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        urls = [
            path("reveal/", view(self.pii_reveal_session_view), name="{}_{}_reveal_session".format(*info)),
            path("<path:object_id>/reveal/", view(self.pii_reveal_view), name="{}_{}_reveal".format(*info)),
        ]
        return urls + super().get_urls()

    @admin.display(description="personal data")
    def pii_reveal(self, obj):
        """The first line of a masked change page: what is masked, and the way to see it."""
        fields = ", ".join(self.pii_labels())
        return format_html(
            '{} are masked. <a class="button" id="pii-reveal" href="{}">Reveal…</a>',
            fields[:1].upper() + fields[1:],
            self.pii_reveal_url(obj),
        )

    # --- the reveal pages ------------------------------------------------------------------------------------

    def pii_reveal_view(self, request, object_id):
        if self.pii_reveal_scope != "object":
            raise Http404
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        form = RevealForm(request.POST if request.method == "POST" else None)
        values = None
        if request.method == "POST" and form.is_valid():
            access_record(
                request=request,
                action="reveal",
                via=self.pii_via,
                lead_ids=self.pii_lead_ids(obj) or None,
                reason=form.cleaned_data["reason"],
                detail={"fields": self.pii_labels(), "object": str(obj.pk)},
            )
            values = self.pii_values(obj)
        return self._reveal_page(request, form, obj=obj, values=values)

    def pii_reveal_session_view(self, request):
        if self.pii_reveal_scope != "session":
            raise Http404
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = RevealForm(request.POST if request.method == "POST" else None)
        back = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
            back = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        if request.method == "POST" and form.is_valid():
            access_record(
                request=request,
                action="reveal",
                via=self.pii_via,
                reason=form.cleaned_data["reason"],
                detail={"scope": "session", "fields": self.pii_labels()},
            )
            request.session[SESSION_KEY] = [*request.session.get(SESSION_KEY, []), self.opts.label_lower]
            return HttpResponseRedirect(back)
        return self._reveal_page(request, form, back=back)

    def _reveal_page(self, request, form, *, obj=None, values=None, back=None):
        context = {
            **self.admin_site.each_context(request),
            "title": "Reveal personal data",
            "opts": self.opts,
            "original": obj,
            "form": form,
            "values": values,
            "session_scope": self.pii_reveal_scope == "session",
            "back": back,
            "fields": self.pii_labels(),
        }
        return TemplateResponse(request, self.pii_reveal_template, context)
