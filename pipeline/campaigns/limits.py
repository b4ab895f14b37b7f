"""The feed's daily limit across channels: FEEDER_DAILY_LIMIT leads per Los Angeles business day, shared by the
e-mail feed (pipeline/campaigns/feeder.py) and the SMS feed (pipeline/sms/feed.py), unless a channel has its
own limit (FEEDER_SMS_DAILY_LIMIT). Experiments split a channel's share across variants, never add to it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Sum

from pipeline.models import FeederRun
from pipeline.sms.models import SmsKind, SmsMessage

CHANNELS = ("email", "sms")


def channel_limit(channel: str) -> int | None:
    """A channel's own daily limit, or None when it shares FEEDER_DAILY_LIMIT."""
    if channel == "sms":
        return settings.FEEDER_SMS_DAILY_LIMIT
    return None


def channel_fed(channel: str, business_date: dt.date) -> int:
    """Leads fed on `channel` on `business_date`: e-mail, the day's claimed leads (feeder_runs); SMS, the first
    texts sent or being sent (a transient failure, `not_sent`, is offered again, so it does not count)."""
    if channel == "email":
        return FeederRun.objects.filter(business_date=business_date).aggregate(n=Sum("leads_claimed"))["n"] or 0
    if channel == "sms":
        return (
            SmsMessage.objects.filter(kind=SmsKind.FIRST, business_date=business_date)
            .exclude(status="not_sent")
            .count()
        )
    raise ValueError(f"unknown feed channel {channel!r}")


def feed_limit_remaining(channel: str, business_date: dt.date) -> int:
    """How many more leads `channel` may feed on `business_date`: its own limit less what it fed, or (shared)
    FEEDER_DAILY_LIMIT less what every sharing channel fed."""
    own = channel_limit(channel)
    if own is not None:
        return max(0, own - channel_fed(channel, business_date))
    sharing = [name for name in CHANNELS if channel_limit(name) is None]
    return max(0, settings.FEEDER_DAILY_LIMIT - sum(channel_fed(name, business_date) for name in sharing))
