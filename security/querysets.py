"""Query sets of the security layer's models."""

from __future__ import annotations

from django.db import models


class BrokerQuerySet(models.QuerySet):
    def active(self):
        return self.filter(active=True)

    def for_user(self, user):
        return self.filter(user=user)
