"""A lead's campaign status: the PostgreSQL enum type `campaign_status` (the seed's values), and which of
them mean "never contact again"."""

from django.db import models


class CampaignStatus(models.TextChoices):
    NEW = "new"
    QUEUED = "queued"
    ACTIVE = "active"
    REPLIED = "replied"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    DO_NOT_CONTACT = "do_not_contact"
    CONVERTED = "converted"


# Statuses after which a lead must never be emailed again.
NEVER_CONTACT_STATUSES = (CampaignStatus.UNSUBSCRIBED, CampaignStatus.BOUNCED, CampaignStatus.DO_NOT_CONTACT)
