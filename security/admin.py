from django.contrib import admin

from .models import Partner, PartnerKey


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "contact_email", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "contact_email")


@admin.register(PartnerKey)
class PartnerKeyAdmin(admin.ModelAdmin):
    list_display = ("key_id", "partner", "status", "default_broker", "created_at", "last_used_at", "revoked_at")
    list_filter = ("status", "partner")
    search_fields = ("key_id", "partner__name", "label")
    exclude = ("secret_ciphertext",)
    readonly_fields = ("key_id", "created_at", "last_used_at", "revoked_at")
