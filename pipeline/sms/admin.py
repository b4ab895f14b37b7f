"""Texts in the admin: read-only records, and the review queue of replies that may be opt-outs.

Filter "Review: to review" lists the replies that read like an opt-out ("please stop texting me", "wrong
number"); the two actions close a review through pipeline/sms/services.py: opt the number out of texts (as a STOP
would), or keep it as an ordinary reply. Filter "Send state: unknown" lists the texts the outbox could not settle
(pipeline/sms/outbox.py: Twilio may or may not have sent them; they are never sent again): ops look the number up
in Twilio's console and contact the person by hand if needed. The number is shown masked; the text itself in the
detail page.
"""

from django.contrib import admin, messages

from leads.masking import mask_phone

from .models import SmsMessage, SmsReview
from .services import SmsReviewError, sms_review_close


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "direction", "kind", "step", "lead", "number", "send_state", "status", "review")
    list_filter = ("send_state", "review", "direction", "kind", "status")
    date_hierarchy = "created_at"
    raw_id_fields = ("lead",)
    fields = (
        "created_at",
        "direction",
        "kind",
        "lead",
        "number",
        "body",
        "body_erased_at",
        "step",
        "send_state",
        "idempotency_key",
        "sending_at",
        "sent_at",
        "status",
        "error",
        "error_code",
        "twilio_sid",
        "business_date",
        "review",
        "reviewed_by_name",
        "reviewed_at",
    )
    readonly_fields = fields
    actions = ("review_opt_out", "review_dismiss")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method == "GET" and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="number")
    def number(self, obj):
        return mask_phone(obj.phone or "")

    def _close(self, request, queryset, *, opt_out: bool):
        done = 0
        for message in queryset.filter(review=SmsReview.PENDING):
            try:
                sms_review_close(message=message, opt_out=opt_out, user=request.user)
                done += 1
            except SmsReviewError as error:
                self.message_user(request, str(error), messages.WARNING)
        self.message_user(request, f"{done} review(s) closed", messages.SUCCESS)

    @admin.action(description="Opt these numbers out of texts (as a STOP would)")
    def review_opt_out(self, request, queryset):
        self._close(request, queryset, opt_out=True)

    @admin.action(description="Not an opt-out: keep as a reply")
    def review_dismiss(self, request, queryset):
        self._close(request, queryset, opt_out=False)
