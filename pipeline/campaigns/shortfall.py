"""Why a feed came out short: the view's age and where the live leads drop out of the feedable rule.

A feed (or a dry run) that would send fewer than the daily limit says why, in words an operator can act on:
how old `mv_contactable_leads` is and how many leads it offers, then the live funnel of queued leads through
each condition of `Lead.objects.feedable()` (consent to e-mail, a verified e-mail, assigned to an active broker,
never fed, not suppressed for e-mail). One aggregate query over `leads`; read-only.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from equity_connect.models import PipelineEvent
from leads.models import Lead

# Each step narrows the one before it: the conditions of Lead.objects.feedable(), in the order a lead meets them.
STEPS: tuple[tuple[str, str, Q], ...] = (
    ("queued", "queued", Q()),
    ("consented", "with consent to e-mail", Q(consent=True, consent_email=True)),
    (
        "verified",
        "with a verified e-mail",
        Q(email_verified=True, email__isnull=False) & ~Q(email=""),
    ),
    ("assigned", "assigned to an active broker", Q(assigned_broker__isnull=False, assigned_broker__active=True)),
    ("never_fed", "never fed before", Q(added_to_campaign_at__isnull=True)),
    ("not_suppressed", "not on the suppression list for e-mail", ~Q(suppressed_channels__has_key="email")),
)


@dataclass(frozen=True)
class Shortfall:
    limit: int
    got: int
    view_refreshed_at: dt.datetime | None
    view_offers: int
    funnel: dict[str, int]

    def as_data(self) -> dict:
        return {
            "limit": self.limit,
            "got": self.got,
            "view_refreshed_at": self.view_refreshed_at.isoformat() if self.view_refreshed_at else None,
            "view_offers": self.view_offers,
            "funnel": self.funnel,
        }

    def text(self) -> str:
        if self.view_refreshed_at is None:
            view = "mv_contactable_leads has never been refreshed"
        else:
            view = f"mv_contactable_leads was refreshed {_age(timezone.now() - self.view_refreshed_at)} ago"
        parts = [f"{self.got} of {self.limit}: {view} and offers {self.view_offers:,} queued leads never fed"]
        live = ", ".join(f"{self.funnel[key]:,} {label}" for key, label, _ in STEPS)
        parts.append(f"live leads: {live}")
        ready = self.funnel["not_suppressed"]
        if ready > self.view_offers:
            parts.append(
                f"{ready - self.view_offers:,} feedable leads are newer than the view: refresh it "
                "(manage.py refresh_contactable_leads, or admin > Job heartbeats)"
            )
        else:
            step = _largest_drop(self.funnel)
            if step:
                parts.append(f"most leads drop out at: {step}")
        return "; ".join(parts)


def _age(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def _largest_drop(funnel: dict[str, int]) -> str | None:
    drops = [
        (funnel[previous] - funnel[key], label)
        for (previous, _, _), (key, label, _) in itertools.pairwise(STEPS)
        if funnel[previous] > funnel[key]
    ]
    return max(drops)[1] if drops else None


def feed_funnel() -> dict[str, int]:
    """The live funnel of queued leads through each step of the feedable rule (one aggregate query)."""
    condition = Q()
    counts = {}
    for key, _, step in STEPS:
        condition &= step
        counts[key] = Count("id", filter=condition)
    return Lead.objects.live().filter(campaign_status="queued").aggregate(**counts)


def feed_shortfall(*, limit: int, got: int, view_offers: int, funnel: dict[str, int]) -> Shortfall | None:
    """None when `got` reaches `limit`; else the reasons. `funnel` is `feed_funnel()` taken before the feed
    claimed anything (needs a context that reads every lead)."""
    if got >= limit:
        return None
    refreshed = (
        PipelineEvent.objects.filter(event_type="mv_refreshed", status="success")
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return Shortfall(limit=limit, got=got, view_refreshed_at=refreshed, view_offers=view_offers, funnel=funnel)
