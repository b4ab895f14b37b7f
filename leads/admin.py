"""Leads, consent records, access records, the verification-code map and the contact windows in the admin
(brokers, with their offboarding: leads/admin_brokers.py).

Ops see leads' personal data masked (leads/masking.py); opening, changing, deleting and exporting leads writes
access records (leads/access.py), which the lead's page links to."""

import uuid

from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils.html import format_html
from import_export import fields, resources
from import_export.admin import ExportMixin, ImportExportModelAdmin

from equity_connect.spreadsheets import SpreadsheetSafeResource

from .access import access_record
from .columns import STAFF_EXPORT
from .compliance.contact_windows import contact_window_delete, contact_window_save
from .contact_edit import lead_contact_confirm
from .contact_indexes import search_indexes
from .masking import MaskingResource, PiiMaskingMixin
from .models import (
    WEEKDAYS,
    ConsentToken,
    ContactWindow,
    Lead,
    LeadAccessRecord,
    LeadConsentAudit,
    VerificationCodeMap,
)
from .services import lead_verified_record


class ContactIndexSearchMixin:
    """Admin search that also finds a lead by its exact e-mail, phone or last four digits, through the blind
    indexes (the values are encrypted; security/fields.py refuses a text search on them). `contact_lead_field`
    is the lead's id on the model searched ("pk" for leads)."""

    contact_lead_field = "pk"

    def get_search_results(self, request, queryset, search_term):
        results, distinct = super().get_search_results(request, queryset, search_term)
        found = search_indexes(search_term)
        if found:
            leads = Lead.objects.filter(
                Q(*[Q(**{f"{column}__in": indexes}) for column, indexes in found.items()], _connector=Q.OR)
            )
            results = results | queryset.filter(**{f"{self.contact_lead_field}__in": leads.values("pk")})
        return results, distinct


# --- django-import-export: the verification-code map in and out, leads out (staff only) -----------------


class VerificationCodeMapResource(SpreadsheetSafeResource, resources.ModelResource):
    """Skip-trace codes by (channel, code): an import updates the meaning of a known code or adds one."""

    class Meta:
        model = VerificationCodeMap
        import_id_fields = ("channel", "code")
        fields = ("channel", "code", "is_verified", "description")
        export_order = fields
        skip_unchanged = True
        report_skipped = True

    def after_import(self, dataset, result, **kwargs):
        # ModelResource resets the id sequence after an import (setval), which the service role may not do
        # and need not: ids are never imported, so the sequence is never behind.
        pass


class LeadResource(MaskingResource, SpreadsheetSafeResource, resources.ModelResource):
    assigned_broker_email = fields.Field(
        attribute="assigned_broker__email", column_name="assigned_broker_email", readonly=True
    )

    class Meta:
        model = Lead
        fields = STAFF_EXPORT
        export_order = fields

    def get_queryset(self):
        return super().get_queryset().select_related("assigned_broker")


class StaffOnlyExportMixin(ExportMixin):
    def has_export_permission(self, request):
        return bool(request.user.is_active and request.user.is_staff) and super().has_export_permission(request)


class TombstoneFilter(admin.SimpleListFilter):
    """Leads merged into another (possible duplicates), kept as tombstones that point to the survivor."""

    title = "merged (tombstone)"
    parameter_name = "tombstone"

    def lookups(self, request, model_admin):
        return (("yes", "yes"), ("no", "no"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(merged_into__isnull=False)
        if self.value() == "no":
            return queryset.live()
        return queryset


def access_history_url(**filters) -> str:
    """The access records of a lead (`lead_id=…`) or of a user (`user_id=…`), newest first."""
    query = "&".join(f"{name}={value}" for name, value in filters.items())
    return f"{reverse('admin:leads_leadaccessrecord_changelist')}?{query}"


def _query_filters(request) -> dict:
    """What a changelist was filtered by (its query string), for an export's access record."""
    return {name: values[0] if len(values) == 1 else values for name, values in request.GET.lists()}


@admin.register(Lead)
class LeadAdmin(ContactIndexSearchMixin, PiiMaskingMixin, StaffOnlyExportMixin, admin.ModelAdmin):
    resource_classes = [LeadResource]
    pii_fields = ("email", "phone")
    pii_via = "admin.lead"
    list_display = (
        "__str__",
        "property_city",
        "property_state",
        "assigned_broker",
        "lead_score",
        "campaign_status",
        "email_verified",
        "phone_verified",
        "consent",
        "created_at",
    )
    list_filter = (
        "campaign_status",
        "email_verified",
        "phone_verified",
        "consent",
        "consent_email",
        "consent_sms",
        "consent_phone",
        "property_state",
        "assigned_broker",
        "email_unconfirmed",
        "phone_unconfirmed",
        TombstoneFilter,
    )
    actions = ["confirm_typed_contacts"]
    # E-mail and phone are encrypted: an exact one is found by its blind index (ContactIndexSearchMixin).
    search_fields = ("first_name", "last_name", "property_address", "mak", "apn")
    raw_id_fields = ("assigned_broker",)
    readonly_fields = ("id", "merged_into_link", "access_history", "added_to_campaign_at", "created_at", "updated_at")
    readonly_fields += ("score_breakdown", "email_unconfirmed", "phone_unconfirmed")
    exclude = ("merged_into",)  # set only by a merge (pipeline/duplicates); shown as a link
    list_select_related = ("assigned_broker",)
    show_full_result_count = False  # COUNT(*) over a million leads on every page is wasted work
    date_hierarchy = "created_at"

    def get_fields(self, request, obj=None):
        fields = [name for name in super().get_fields(request, obj) if name != "merged_into_link"]
        # A tombstone says first where its lead went.
        return ["merged_into_link", *fields] if obj is not None and obj.merged_into_id else fields

    def pii_lead_ids(self, obj) -> list:
        return [obj.pk]

    @admin.action(description="Confirm the e-mail/phone a broker typed (after verifying it)")
    def confirm_typed_contacts(self, request, queryset):
        confirmed = 0
        for lead in queryset.filter(Q(email_unconfirmed=True) | Q(phone_unconfirmed=True)):
            for channel in ("email", "phone"):
                if getattr(lead, f"{channel}_unconfirmed"):
                    lead_contact_confirm(lead=lead, channel=channel, by=request.user.get_username(), user=request.user)
                    confirmed += 1
        self.message_user(request, f"{confirmed} typed contact point(s) confirmed.")

    @admin.display(description="who saw it")
    def access_history(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return format_html(
            '<a href="{}" id="access-history-link">Access history</a> (who viewed, exported, changed or revealed it)',
            access_history_url(lead_id=obj.pk),
        )

    # --- who saw what: views, changes, deletions and exports are recorded -----------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        lead = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and lead is not None:
            access_record(request=request, action="view", via=self.pii_via, lead_ids=[lead.pk])
        return response

    def save_model(self, request, obj, form, change):
        before = {flag: bool(form.initial.get(flag)) for flag in ("email_verified", "phone_verified")}
        super().save_model(request, obj, form, change)
        detail = {"fields": sorted(form.changed_data)} if change else {"created": True}
        access_record(request=request, action="change", via=self.pii_via, lead_ids=[obj.pk], detail=detail)
        lead_verified_record(lead=obj, before=before, by=request.user.get_username(), via="admin")

    def delete_model(self, request, obj):
        lead_id = obj.pk
        super().delete_model(request, obj)
        access_record(request=request, action="change", via=self.pii_via, lead_ids=[lead_id], detail={"deleted": True})

    def delete_queryset(self, request, queryset):
        lead_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        access_record(request=request, action="change", via=self.pii_via, lead_ids=lead_ids, detail={"deleted": True})

    def get_data_for_export(self, request, queryset, **kwargs):
        data = super().get_data_for_export(request, queryset, **kwargs)
        form = kwargs.get("export_form")
        selected = form.cleaned_data.get("export_items") if form is not None and form.is_bound else None
        access_record(
            request=request,
            action="export",
            via="admin.lead_export",
            filters={**_query_filters(request), **({"selected": len(selected)} if selected else {})},
            row_count=len(data),
            detail={} if self.pii_visible(request) else {"masked": list(self.pii_fields)},
        )
        return data

    @admin.display(description="merged into")
    def merged_into_link(self, obj):
        if obj is None or obj.merged_into_id is None:
            return "—"
        return format_html(
            '<a href="{}" id="merged-into-link">{}</a> (this lead is a tombstone: it was merged into that one)',
            reverse("admin:leads_lead_change", args=[obj.merged_into_id]),
            obj.merged_into_id,
        )


@admin.register(ConsentToken)
class ConsentTokenAdmin(ContactIndexSearchMixin, admin.ModelAdmin):
    list_display = ("lead", "broker", "created_at", "expires_at", "used_at")
    list_filter = ("used_at",)
    search_fields = ("token_hash",)  # and the lead's exact e-mail or phone (ContactIndexSearchMixin)
    contact_lead_field = "lead_id"
    raw_id_fields = ("lead", "broker")
    readonly_fields = ("token_hash", "fingerprint")


@admin.register(LeadConsentAudit)
class LeadConsentAuditAdmin(ContactIndexSearchMixin, PiiMaskingMixin, admin.ModelAdmin):
    """Read-only: a consent record is evidence. The database refuses changes too (a trigger, migration 0008)."""

    pii_fields = ("ip_address", "user_agent")  # the lead's own address and browser
    pii_via = "admin.consent_record"

    list_display = ("__str__", "lead_ref", "consent", "channels", "method", "consent_text_version", "ip_address")
    list_display += ("utm_source", "created_at")
    list_filter = ("consent", "method", "consent_text_version")
    search_fields = ("ip_address", "token_hash")  # and the lead's exact e-mail or phone (ContactIndexSearchMixin)
    contact_lead_field = "lead_id"
    # Not the lead itself in the list: a join would drop the records of deleted leads, which must stay.
    list_select_related = ()

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(lead_exists=Exists(Lead.objects.filter(pk=OuterRef("lead_id"))))

    @admin.display(description="lead")
    def lead_ref(self, obj):
        if not getattr(obj, "lead_exists", True):
            return f"{obj.lead_id} (deleted)"
        return format_html('<a href="{}">{}</a>', reverse("admin:leads_lead_change", args=[obj.lead_id]), obj.lead_id)

    def has_add_permission(self, request):
        return False  # consent is given by the lead on the consent page, never typed in

    def has_change_permission(self, request, obj=None):
        return False  # an audit trail is append-only

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LeadAccessRecord)
class LeadAccessRecordAdmin(admin.ModelAdmin):
    """Who saw what, read-only: the database refuses changes too (a trigger, migration 0009). A lead's history is
    `?lead_id=<id>` (linked from the lead's page), a user's `?user_id=<id>` (linked from each record)."""

    list_display = ("created_at", "action", "via", "lead_ref", "user_ref", "broker_ref", "row_count", "short_reason")
    list_display += ("ip_address",)
    list_filter = ("action", "via")
    search_fields = ("username", "reason")
    search_help_text = "A lead id, a broker id, a user id, or part of a login name or a reason."
    show_full_result_count = False
    date_hierarchy = "created_at"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(user_id=int(term)), False
        try:
            value = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(Q(lead_id=value) | Q(broker_id=value)), False

    @admin.display(description="lead")
    def lead_ref(self, obj):
        if obj.lead_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', access_history_url(lead_id=obj.lead_id), obj.lead_id)

    @admin.display(description="who", ordering="user_id")
    def user_ref(self, obj):
        return format_html(
            '<a href="{}">{}</a>', access_history_url(user_id=obj.user_id), obj.username or f"user {obj.user_id}"
        )

    @admin.display(description="broker", ordering="broker_id")
    def broker_ref(self, obj):
        if obj.broker_id is None:
            return "—"
        url = reverse("admin:security_broker_change", args=[obj.broker_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.broker_id)[:8])

    @admin.display(description="reason")
    def short_reason(self, obj):
        return obj.reason if len(obj.reason) <= 60 else f"{obj.reason[:57]}…"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # append-only

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(VerificationCodeMap)
class VerificationCodeMapAdmin(ImportExportModelAdmin):
    resource_classes = [VerificationCodeMapResource]
    list_display = ("channel", "code", "is_verified", "description", "updated_at")
    list_filter = ("channel", "is_verified")
    search_fields = ("code", "description")


class ContactWindowForm(forms.ModelForm):
    days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple, help_text="The days the window opens"
    )

    class Meta:
        model = ContactWindow
        fields = ("state", "channel", "start", "end", "days", "closed_on_holidays", "note")


@admin.register(ContactWindow)
class ContactWindowAdmin(admin.ModelAdmin):
    """The hours each state allows per channel, in the lead's local time. Compliance keeps them current: a state
    whose law is stricter than the default (08:00 to 21:00 every day for calls and texts) gets a narrower row.
    A state without a row gets that default for calls and texts, and no window for e-mail."""

    form = ContactWindowForm
    list_display = ("state", "channel", "start", "end", "days_text", "closed_on_holidays", "updated_at")
    list_filter = ("channel", "closed_on_holidays")
    search_fields = ("state", "note")
    ordering = ("state", "channel")

    @admin.display(description="days")
    def days_text(self, obj):
        names = dict(WEEKDAYS)
        return "every day" if len(set(obj.days)) == 7 else ", ".join(names[day][:3] for day in sorted(obj.days))

    def save_model(self, request, obj, form, change):
        contact_window_save(row=obj, user=request.user)

    def delete_model(self, request, obj):
        contact_window_delete(row=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for row in queryset:
            contact_window_delete(row=row, user=request.user)


from . import admin_brokers  # noqa: E402, F401  (registers brokers and their offboarding)
from .learned import admin as learned_admin  # noqa: E402, F401  (registers the score model versions)
from .suppressions import admin as suppressions_admin  # noqa: E402, F401  (registers the suppression list)
