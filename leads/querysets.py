"""Query sets that carry broker scoping: views, admin and jobs call these instead of filtering by hand.

This is the first wall; row-level security in the database is the second (equity_connect/db.py).
"""

from __future__ import annotations

from django.db import models

from .statuses import NEVER_CONTACT_STATUSES


class LeadQuerySet(models.QuerySet):
    def live(self):
        """Without the tombstones of leads merged into another (`merged_into`)."""
        return self.filter(merged_into__isnull=True)

    def for_broker(self, broker):
        """Only `broker`'s leads. `broker` is a Broker or its id; None gives no rows, never all rows."""
        if broker is None:
            return self.none()
        return self.filter(assigned_broker_id=getattr(broker, "pk", broker))

    def contactable(self):
        """The live form of the `mv_contactable_leads` rule (consented, verified, reachable, assigned, and no
        contact point a broker typed that nothing has confirmed yet: migration 0018)."""
        return (
            self.filter(consent=True, assigned_broker__isnull=False, email_unconfirmed=False, phone_unconfirmed=False)
            .filter(models.Q(email_verified=True) | models.Q(phone_verified=True))
            .exclude(campaign_status__in=[*NEVER_CONTACT_STATUSES, "converted"])
        )

    def suppressed_for(self, channel: str):
        """Leads the suppression list binds for `channel` (their marks: leads/suppressions/sql.py)."""
        return self.filter(suppressed_channels__has_key=channel)

    def feedable(self):
        """Contactable, queued, never fed, and ready for an e-mail campaign: consent to e-mail and a verified
        e-mail (consent to text or call, or a verified phone, is no licence to e-mail), and not suppressed for
        e-mail (a do-not-call entry binds phone and SMS only: it does not stop an e-mail)."""
        return (
            self.contactable()
            .filter(
                campaign_status="queued",
                added_to_campaign_at__isnull=True,
                email__isnull=False,
                consent_email=True,
                email_verified=True,
            )
            .exclude(email="")
            .exclude(suppressed_channels__has_key="email")
        )

    def sms_feedable(self):
        """Contactable, queued, never fed, and ready for a text: consent to texts and a verified phone that is
        not known to be a landline (a phone is taken as mobile unless the skip-trace's `line_type` says
        otherwise), and not suppressed for SMS (a DNC entry, a STOP)."""
        return (
            self.contactable()
            .filter(
                campaign_status="queued",
                added_to_campaign_at__isnull=True,
                phone__isnull=False,
                consent_sms=True,
                phone_verified=True,
            )
            .exclude(phone="")
            # Both conditions: a payload without the key gives NULL, which a bare exclude would drop too.
            .exclude(
                melissa_payload__has_key="line_type",
                melissa_payload__line_type__iregex=r"^\s*(landline|fixed|fixed[ _-]?line)\s*$",
            )
            .exclude(suppressed_channels__has_key="sms")
        )
