"""The suppression list and the DNC registry imports in the admin. Adding and removing go through the services
(leads/suppressions/services.py), so the leads are marked or unmarked at once and the events are recorded."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .models import DncRegistryImport, Suppression
from .rules import ALL_CHANNELS, SuppressionInvalid
from .services import suppression_add, suppression_remove


class SuppressionAddForm(forms.ModelForm):
    value = forms.CharField(
        help_text="E-mail (lower case), domain, E.164 phone (+15185550142), or an address hash (the command "
        "`manage.py suppression add --kind address --address … --city … --state … --zip …` computes it)"
    )
    chosen_channels = forms.MultipleChoiceField(
        choices=[(channel, channel) for channel in ALL_CHANNELS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Manual entries only: the channels it binds",
    )

    class Meta:
        model = Suppression
        fields = ["kind", "value", "reason", "chosen_channels", "note"]


class SuppressionRemoveForm(forms.ModelForm):
    removal_note = forms.CharField(required=False, help_text="Fill in to remove the entry: why it goes")

    class Meta:
        model = Suppression
        fields = []


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "label",
        "reason",
        "channels",
        "source",
        "created_at",
        "created_by_name",
        "removed_at",
    )
    list_filter = ("kind", "reason", ("removed_at", admin.EmptyFieldListFilter))
    readonly_fields = (
        "kind", "label", "reason", "channels", "source", "note", "created_at", "created_by_name", "removed_at",
        "removed_by_name", "removed_note", "instantly_synced_at",
    )  # fmt: skip
    search_fields = ("source", "note")

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = SuppressionAddForm if obj is None else SuppressionRemoveForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # removing keeps the row (who, when, why)

    def save_model(self, request, obj, form, change):
        try:
            if not change:
                outcome = suppression_add(
                    kind=form.cleaned_data["kind"],
                    value=form.cleaned_data["value"],
                    reason=form.cleaned_data["reason"],
                    channels=form.cleaned_data.get("chosen_channels") or None,
                    note=form.cleaned_data.get("note", ""),
                    source="admin",
                    user=request.user,
                )
                form.instance = obj = outcome.entry
                obj.pk = outcome.entry.pk
                if not outcome.created:
                    messages.info(request, "Already listed: nothing changed.")
            elif form.cleaned_data.get("removal_note"):
                suppression_remove(entry=obj, note=form.cleaned_data["removal_note"], user=request.user)
        except SuppressionInvalid as error:
            messages.error(request, str(error))


@admin.register(DncRegistryImport)
class DncRegistryImportAdmin(admin.ModelAdmin):
    list_display = ("imported_at", "filename", "replace", "numbers_in_file", "numbers_total", "leads_marked",
                    "duration_ms", "imported_by")  # fmt: skip
    readonly_fields = [field.name for field in DncRegistryImport._meta.fields]

    def has_add_permission(self, request):
        return False  # `manage.py dnc_import`

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
