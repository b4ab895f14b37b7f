"""Partners and their keys in the admin (brokers: leads/admin_brokers.py, since offboarding a broker moves leads). A
new key's secret is shown once, on the page the saving POST renders (never in a message, which would travel
through the session or a cookie); revocation and rotation (a second active key for the same partner, with the
same brokers and v1 setting) are admin actions that call the same services as `manage.py partner_key`. A key's
allowed brokers (whom its uploads may name in X-Broker-Id) and whether it may sign v1 are edited on its page."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from .models import Partner, PartnerKey, PartnerKeyStatus
from .services import PartnerKeyError, partner_key_create, partner_key_policy_update, partner_key_revoke


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "contact_email", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "contact_email")


class PartnerKeyCreateForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        min_length=32,
        widget=forms.PasswordInput,
        help_text="Leave empty for a random secret (recommended). Shown once after saving.",
    )

    class Meta:
        model = PartnerKey
        fields = ("partner", "default_broker", "allowed_brokers", "allow_v1", "label")


@admin.register(PartnerKey)
class PartnerKeyAdmin(admin.ModelAdmin):
    list_display = (
        "key_id",
        "partner",
        "status",
        "default_broker",
        "allow_v1",
        "label",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("status", "allow_v1", "partner")
    autocomplete_fields = ("allowed_brokers",)
    search_fields = ("key_id", "partner__name", "label")
    exclude = ("secret_ciphertext",)
    readonly_fields = ("key_id", "status", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke_keys", "rotate_keys")

    def has_delete_permission(self, request, obj=None):
        return False  # a key is revoked, never deleted: its uploads and events keep naming it

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PartnerKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "partner") if obj else ()

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("partner", "default_broker", "allowed_brokers", "allow_v1", "label", "secret")
        return (
            "key_id",
            "partner",
            "status",
            "default_broker",
            "allowed_brokers",
            "allow_v1",
            "label",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def save_model(self, request, obj, form, change):
        if change:
            partner_key_policy_update(
                key=obj,
                default_broker=form.cleaned_data.get("default_broker"),
                allowed_brokers=list(form.cleaned_data.get("allowed_brokers") or ()),
                allow_v1=form.cleaned_data.get("allow_v1", False),
                label=form.cleaned_data.get("label", ""),
            )
            return None
        try:
            key, secret = partner_key_create(
                partner=form.cleaned_data["partner"],
                default_broker=form.cleaned_data.get("default_broker"),
                secret=form.cleaned_data.get("secret") or None,
                label=form.cleaned_data.get("label", ""),
                allow_v1=form.cleaned_data.get("allow_v1", False),
                allowed_brokers=list(form.cleaned_data.get("allowed_brokers") or ()),
            )
        except PartnerKeyError as error:
            self.message_user(request, str(error), messages.ERROR)
            return None
        obj.pk, obj.key_id = key.pk, key.key_id
        obj.new_secret = secret  # for response_add, on this request only
        return None

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(obj, "new_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return self._new_secrets_page(request, "Key created", [{"key": obj, "secret": secret, "note": ""}])

    def _new_secrets_page(self, request, title: str, keys: list[dict]) -> TemplateResponse:
        """New secrets are shown on the page this POST renders: never in a message, a redirect or a cookie."""
        context = {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, "keys": keys}
        return TemplateResponse(request, "admin/security/partnerkey/new_secrets.html", context)

    def save_related(self, request, form, formsets, change):
        # save_model's service has set the allowed brokers (and recorded the change): only inlines are left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description="Revoke the selected keys (they stop verifying at once)")
    def revoke_keys(self, request, queryset):
        count = 0
        for key in queryset.select_related("partner").filter(status=PartnerKeyStatus.ACTIVE):
            partner_key_revoke(key=key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).")

    @admin.action(description="Rotate: create a new key beside each selected key (revoke the old one later)")
    def rotate_keys(self, request, queryset):
        keys = []
        for old in queryset.select_related("partner", "default_broker").filter(status=PartnerKeyStatus.ACTIVE):
            key, secret = partner_key_create(
                partner=old.partner,
                default_broker=old.default_broker,
                label=f"rotation of {old.key_id}",
                allow_v1=old.allow_v1,
                allowed_brokers=list(old.allowed_brokers.all()),
            )
            keys.append({"key": key, "secret": secret, "note": f"Both keys work until you revoke {old.key_id}."})
        if not keys:
            self.message_user(request, "No active key was selected: nothing rotated.", messages.WARNING)
            return None
        return self._new_secrets_page(request, "New keys", keys)
