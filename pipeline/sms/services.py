"""The review of text replies that may be opt-outs (the admin's "Text messages to review" calls these), and the
retention of text bodies (the daily retention job calls `sms_bodies_expire`)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from equity_connect.events import record_event

from .models import SmsMessage, SmsReview
from .webhooks import sms_opt_out


class SmsReviewError(Exception):
    """The review cannot be done as asked; the message is safe to show."""


def _who(user) -> str:
    return user.get_username() if user is not None else ""


def sms_review_close(*, message: SmsMessage | int, opt_out: bool, user=None) -> SmsMessage:
    """Close a pending review: `opt_out` puts the number on the suppression list for texts (as a STOP would);
    otherwise the reply stays a reply. Needs a service context. Records `sms_review_closed`."""
    with transaction.atomic():
        message = SmsMessage.objects.select_for_update().get(pk=getattr(message, "pk", message))
        if message.review != SmsReview.PENDING:
            raise SmsReviewError(f"text #{message.pk} is not waiting for a review")
        if opt_out:
            sms_opt_out(phone=message.phone, source="sms_review", user=user)
        message.review = SmsReview.OPTED_OUT if opt_out else SmsReview.DISMISSED
        message.reviewed_by_name = _who(user)[:150]
        message.reviewed_at = timezone.now()
        message.save(update_fields=["review", "reviewed_by_name", "reviewed_at", "updated_at"])
        record_event(
            "sms_review_closed",
            lead_id=message.lead_id,
            broker_id=message.broker_id,
            data={"sms_message_id": message.pk, "opted_out": opt_out, "by": message.reviewed_by_name},
        )
    return message


def sms_bodies_expire(*, before) -> int:
    """Empty the body of every text (sent or received) created before `before`, once: the row, its number's blind
    index, status, sid and times stay (the timeline and the daily counts still read them); `body_erased_at` says
    when. Needs a service context. Returns how many bodies were emptied."""
    return SmsMessage.objects.filter(created_at__lt=before, body_erased_at__isnull=True).update(
        body="", body_erased_at=timezone.now(), updated_at=timezone.now()
    )
