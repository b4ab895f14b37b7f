"""The suppression list (`suppressions`), the national Do-Not-Call registry (`dnc_registry_numbers`) and its
imports (`dnc_registry_imports`). Imported by leads/models.py, so Django sees them as the leads app's models."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from .rules import ALL_CHANNELS, SuppressionKind, SuppressionReason


class SuppressionQuerySet(models.QuerySet):
    def active(self):
        return self.filter(removed_at__isnull=True)


class Suppression(models.Model):
    """One contact that must not be contacted on `channels`, and why.

    The contact is never stored in plain text: `value_indexes` holds its keyed blind index under EVERY
    configured version (security/pii.py; an entry made before a key rotation still matches the leads indexed
    after it), or for an address its address hash. `value_encrypted` keeps the value itself (AES-GCM) for the
    Instantly block list and for re-indexing under a new key; an erasure entry has none (the person is gone).
    `label` is a masked form for people (`j•••@example.com`). Removing an entry keeps the row (`removed_at`)."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=SuppressionKind.choices)
    value_indexes = ArrayField(models.CharField(max_length=80), help_text="Blind indexes (every version) or hash")
    value_encrypted = models.TextField(blank=True, default="", db_default="", editable=False)
    label = models.TextField(blank=True, default="", db_default="", help_text="Masked, for people")
    reason = models.CharField(max_length=24, choices=SuppressionReason.choices)
    channels = ArrayField(models.CharField(max_length=8), help_text="email, sms, phone")
    source = models.TextField(help_text="Where it came from, e.g. instantly_webhook, unsubscribe_link, csv:file")
    note = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_by_name = models.TextField(blank=True, default="", db_default="", help_text="Who, at the time")
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by_name = models.TextField(blank=True, default="", db_default="")
    removed_note = models.TextField(blank=True, default="", db_default="")
    # When the Instantly side was done (block-list entry pushed, running sequences stopped): once per entry.
    instantly_synced_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        db_table = "suppressions"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=SuppressionKind.values), name="suppressions_kind"),
            models.CheckConstraint(
                condition=models.Q(reason__in=SuppressionReason.values), name="suppressions_reason"
            ),
            models.CheckConstraint(
                condition=models.Q(channels__len__gt=0, channels__contained_by=list(ALL_CHANNELS)),
                name="suppressions_channels_valid",
            ),
            # Do-not-call lists never stop an e-mail; an unsubscribe or a bounce binds e-mail only.
            models.CheckConstraint(
                condition=~models.Q(
                    reason__in=[SuppressionReason.DNC_REGISTRY, SuppressionReason.LITIGATOR],
                    channels__contains=["email"],
                ),
                name="suppressions_dnc_never_email",
            ),
            models.CheckConstraint(
                condition=~models.Q(reason__in=[SuppressionReason.UNSUBSCRIBE, SuppressionReason.BOUNCE])
                | models.Q(channels=["email"]),
                name="suppressions_email_reasons_email_only",
            ),
            models.CheckConstraint(condition=models.Q(value_indexes__len__gt=0), name="suppressions_has_value"),
        ]
        indexes = [
            # Lookups by any version of a value's index (`value_indexes && ARRAY[…]`).
            GinIndex(fields=["value_indexes"], name="suppressions_value_idx"),
            # The Instantly outbox: entries not yet synced.
            models.Index(
                fields=["id"],
                name="suppressions_unsynced_idx",
                condition=models.Q(instantly_synced_at__isnull=True, removed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label or '(erased)'}: {self.reason} ({', '.join(self.channels)})"

    @property
    def active(self) -> bool:
        return self.removed_at is None


class DncRegistryNumber(models.Model):
    """One number of the national Do-Not-Call registry: public data, kept as an integer (area code + number,
    ten digits), keyed by `phone_key`, the 16 bytes of the phone blind index of its E.164 form (the hex part of
    `<version>:<32 hex>`, as a uuid) under the blind-index version of the newest import
    (`DncRegistryImport.blind_index_version`), so that leads whose phone is encrypted match by
    `dnc_phone_key(leads.phone_bidx)`. One index, the primary key: on 10M numbers it builds in ~8 s, where the
    number's primary key and the text index took ~37 s. Filled only by `manage.py dnc_import`
    (pipeline/suppressions/dnc.py)."""

    phone_key = models.UUIDField(primary_key=True)
    number = models.BigIntegerField()

    class Meta:
        db_table = "dnc_registry_numbers"

    def __str__(self) -> str:
        return str(self.number)


class DncRegistryImport(models.Model):
    """One run of `manage.py dnc_import`: the file, what it changed, how long it took. The newest decides the
    age of the DNC data (the `dnc_registry_stale` alert)."""

    id = models.BigAutoField(primary_key=True)
    imported_at = models.DateTimeField(default=timezone.now, db_default=Now())
    filename = models.TextField()
    deletions_filename = models.TextField(blank=True, default="", db_default="")
    replace = models.BooleanField(default=False, help_text="The file was the whole registry")
    numbers_in_file = models.BigIntegerField(default=0)
    numbers_deleted = models.BigIntegerField(default=0)
    numbers_total = models.BigIntegerField(default=0, help_text="Numbers in the registry after the import")
    leads_marked = models.IntegerField(default=0, help_text="Leads whose marks changed")
    duration_ms = models.IntegerField(default=0)
    imported_by = models.TextField(blank=True, default="", db_default="")
    blind_index_version = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text="The blind-index version the registry's keys were computed under",
    )

    class Meta:
        db_table = "dnc_registry_imports"
        ordering = ["-imported_at", "-id"]
        verbose_name = "DNC registry import"  # not Django's "Dnc registry import" (the runbooks name it)

    def __str__(self) -> str:
        return f"DNC import {self.imported_at:%Y-%m-%d} ({self.numbers_total} numbers)"
