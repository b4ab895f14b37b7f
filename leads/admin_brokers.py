"""Brokers in the admin: import and export by e-mail, and *Offboard* (leads/brokers.py), which deactivates a broker
and hands their leads to another after a confirmation page. It sits in `leads` because offboarding moves leads,
which `security` (where `Broker` lives) may not import; leads/admin.py imports it so that it registers."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from import_export import resources
from import_export.admin import ImportExportModelAdmin

from equity_connect.spreadsheets import SpreadsheetSafeResource
from security.models import Broker

from .brokers import REASON_MAX_LENGTH, BrokerOffboardError, broker_offboard, broker_offboard_preview


class BrokerResource(SpreadsheetSafeResource, resources.ModelResource):
    """Brokers by email (the natural key): an import updates a broker with that email or adds one."""

    class Meta:
        model = Broker
        import_id_fields = ("email",)
        fields = (
            "name",
            "email",
            "phone",
            "company",
            "nmls_id",
            "territory_states",
            "territory_zip_prefixes",
            "active",
        )
        export_order = fields
        skip_unchanged = True
        report_skipped = True


class BrokerOffboardForm(forms.Form):
    to_broker = forms.ModelChoiceField(
        queryset=Broker.objects.none(),
        required=False,
        label="Hand their leads to",
        help_text="An active broker. Every lead of the leaving broker is reassigned to them.",
    )
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Written on each reassigned lead's timeline (e.g. “left the company on 30 November”).",
    )

    def __init__(self, *args, broker: Broker, leads: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_broker"].queryset = Broker.objects.active().exclude(pk=broker.pk).order_by("name")
        self.fields["to_broker"].required = leads > 0


@admin.register(Broker)
class BrokerAdmin(ImportExportModelAdmin):
    resource_classes = [BrokerResource]
    list_display = ("name", "email", "company", "active", "territory_states", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "email", "company", "nmls_id")
    raw_id_fields = ("user",)
    actions = ("offboard_broker",)

    @admin.action(description="Offboard: deactivate and hand their leads to another broker", permissions=["change"])
    def offboard_broker(self, request, queryset):
        brokers = list(queryset[:2])
        if len(brokers) != 1:
            self.message_user(request, "Select exactly one broker to offboard.", messages.WARNING)
            return None
        broker = brokers[0]
        preview = broker_offboard_preview(broker=broker)
        confirmed = "confirm" in request.POST
        form = BrokerOffboardForm(request.POST if confirmed else None, broker=broker, leads=preview.leads)
        if confirmed and form.is_valid():
            try:
                result = broker_offboard(
                    broker=broker,
                    to_broker=form.cleaned_data.get("to_broker"),
                    reason=form.cleaned_data["reason"],
                    user=request.user,
                )
            except BrokerOffboardError as error:
                form.add_error(None, str(error))
            else:
                target = f" to {result.to_broker.name}" if result.to_broker else ""
                self.message_user(
                    request,
                    f"{broker.name} is inactive; {result.leads_moved:,} lead(s) reassigned{target}.",
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Offboard {broker.name}",
            "opts": self.model._meta,
            "broker": broker,
            "preview": preview,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/security/broker/offboard_confirm.html", context)
