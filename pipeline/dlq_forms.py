"""The DLQ admin's forms and list filters: a rejected row as a form (one field per cell, under the lead field it
maps to, the partner's header beside it, what is wrong next to the field that causes it), the discard note, one
field set across many rows, and the list's "open items first" and "by reason" filters. The admin
(pipeline/admin.py) calls the DLQ recorder and the ingestion service with what these return."""

from __future__ import annotations

import hashlib

from django import forms
from django.contrib import admin
from django.db.models import Count

from leads.masking import mask_text
from pipeline.dlq import OPEN_STATUSES
from pipeline.ingest.columns import ALIASES
from pipeline.ingest.rows import REASON_NO_KEY
from pipeline.ingest.triage import KEY_FIELDS, payload_with, row_fields, row_problems, values_by_field
from pipeline.models import DLQStatus

CELL_MAX = 2000
# The field a reprocess's reason points at (RowStillInvalid): the ingestion's words → the field to fix.
REASON_FIELDS = {REASON_NO_KEY: "property_address"}


class DLQRowForm(forms.Form):
    """One field per cell of a rejected row (`cell_<n>`), plus the key fields the file lacked."""

    def __init__(self, *args, payload: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.payload = payload
        self.rows = row_fields(payload)
        for index, row in enumerate(self.rows):
            self.fields[f"cell_{index}"] = forms.CharField(
                required=False, initial=row.value, label=row.label, max_length=CELL_MAX, strip=False
            )
        self.new_payload: dict | None = None

    def name_of(self, field: str) -> str | None:
        """The form field of lead field `field` (the first column that maps to it)."""
        for index, row in enumerate(self.rows):
            if row.field == field:
                return f"cell_{index}"
        return None

    def problems(self) -> dict[str, str]:
        """{form field: what is wrong} of the row as stored (shown before any edit)."""
        found = row_problems(values_by_field(self.payload))
        return {name: message for field, message in found.items() if (name := self.name_of(field))}

    def clean(self):
        cleaned = super().clean()
        changes = {row.key: cleaned.get(f"cell_{index}", "") for index, row in enumerate(self.rows)}
        payload = payload_with(self.payload, changes)
        for field, message in row_problems(values_by_field(payload)).items():
            name = self.name_of(field)
            self.add_error(name, message) if name else self.add_error(None, f"{field}: {message}")
        self.new_payload = payload
        return cleaned

    def add_reason(self, reason: str) -> None:
        """Show a reprocess's reason next to the field it is about (or above the form)."""
        name = self.name_of(REASON_FIELDS.get(reason, ""))
        if name and name not in self.errors:
            self.add_error(name, reason)
        else:
            self.add_error(None, reason)

    def field_rows(self, *, problems: dict[str, str] | None = None):
        """(bound field, the cell's row, what is wrong) for the template."""
        problems = problems or {}
        return [(self[f"cell_{index}"], row, problems.get(f"cell_{index}", "")) for index, row in enumerate(self.rows)]


class DiscardForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        required=True,
        strip=True,
        max_length=2000,
        help_text="Why these items are being discarded (kept with each item).",
    )


def _field_choices():
    rest = sorted(name for name in ALIASES if name not in KEY_FIELDS)
    return [(name, name) for name in (*KEY_FIELDS, *rest)]


class SetFieldForm(forms.Form):
    field = forms.ChoiceField(choices=_field_choices, help_text="The lead field to set on every selected row")
    value = forms.CharField(
        max_length=CELL_MAX, strip=True, required=False, help_text="The same value for all of them"
    )


# --- the list's filters ------------------------------------------------------------------------------------------


class OpenFilter(admin.SimpleListFilter):
    """Open items (open or retrying) unless asked otherwise; "All" clears it. A `status__…` lookup in the address
    (the runbooks' links) chooses for itself."""

    title = "state"
    parameter_name = "state"
    ALL = "all"
    CHOICES = (("open", "Open (to do)"), ("resolved", "Resolved"), ("discarded", "Discarded"), (ALL, "All"))

    def __init__(self, request, params, model, model_admin):
        self.request = request
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return self.CHOICES

    def chosen(self, request) -> str:
        value = self.value()
        if value in dict(self.CHOICES):
            return value
        return self.ALL if any(name.startswith("status") for name in request.GET) else "open"

    def queryset(self, request, queryset):
        chosen = self.chosen(request)
        if chosen == "open":
            return queryset.filter(status__in=OPEN_STATUSES)
        if chosen == self.ALL:
            return queryset
        return queryset.filter(status=chosen)

    def choices(self, changelist):
        chosen = self.chosen(self.request)
        for lookup, title in self.lookup_choices:
            if lookup == "open":
                query_string = changelist.get_query_string(remove=[self.parameter_name])
            else:
                query_string = changelist.get_query_string({self.parameter_name: lookup})
            yield {"selected": chosen == lookup, "query_string": query_string, "display": title}


REASONS_LISTED = 15


def reason_key(reason: str) -> str:
    return hashlib.sha256(reason.encode()).hexdigest()[:12]


class ReasonFilter(admin.SimpleListFilter):
    """The open items grouped by reason, with how many each (the most frequent first); e-mail addresses and phone
    numbers in a reason are masked for a person who has not revealed the DLQ's personal data."""

    title = "reason (open items)"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        groups = (
            model_admin.get_queryset(request)
            .filter(status__in=(DLQStatus.OPEN, DLQStatus.RETRYING))
            .values("reason")
            .annotate(items=Count("id"))
            .order_by("-items", "reason")[:REASONS_LISTED]
        )
        visible = model_admin.pii_visible(request)
        self.reasons = {reason_key(group["reason"]): group["reason"] for group in groups}
        return [
            (
                reason_key(group["reason"]),
                f"{group['items']:,} · {_short(group['reason'] if visible else mask_text(group['reason']))}",
            )
            for group in groups
        ]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        reason = getattr(self, "reasons", {}).get(self.value())
        return queryset.filter(reason=reason) if reason is not None else queryset.none()


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
