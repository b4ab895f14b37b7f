from django.contrib import admin

from .models import Broker, ConsentToken, Lead, LeadConsentAudit, VerificationCodeMap


@admin.register(Broker)
class BrokerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "company", "active", "territory_states", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "email", "company", "nmls_id")
    raw_id_fields = ("user",)


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = (
        "__str__", "property_city", "property_state", "assigned_broker", "lead_score", "campaign_status",
        "email_verified", "phone_verified", "consent", "created_at",
    )
    list_filter = ("campaign_status", "email_verified", "phone_verified", "consent", "property_state",
                   "assigned_broker")
    search_fields = ("first_name", "last_name", "email", "phone", "property_address", "mak", "apn")
    raw_id_fields = ("assigned_broker",)
    readonly_fields = ("id", "added_to_campaign_at", "created_at", "updated_at", "score_breakdown")
    list_select_related = ("assigned_broker",)
    show_full_result_count = False  # COUNT(*) over a million leads on every page is wasted work
    date_hierarchy = "created_at"


@admin.register(ConsentToken)
class ConsentTokenAdmin(admin.ModelAdmin):
    list_display = ("lead", "broker", "created_at", "expires_at", "used_at")
    list_filter = ("used_at",)
    search_fields = ("lead__email", "token_hash")
    raw_id_fields = ("lead", "broker")
    readonly_fields = ("token_hash",)


@admin.register(LeadConsentAudit)
class LeadConsentAuditAdmin(admin.ModelAdmin):
    list_display = ("lead", "consent", "method", "ip_address", "utm_source", "created_at")
    list_filter = ("consent", "method")
    search_fields = ("lead__email", "ip_address", "token_hash")
    raw_id_fields = ("lead",)

    def has_change_permission(self, request, obj=None):
        return False  # an audit trail is append-only


@admin.register(VerificationCodeMap)
class VerificationCodeMapAdmin(admin.ModelAdmin):
    list_display = ("channel", "code", "is_verified", "description", "updated_at")
    list_filter = ("channel", "is_verified")
    search_fields = ("code", "description")
