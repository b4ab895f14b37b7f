"""The alerts' models: `alerts` (one row per incident, acknowledged and snoozed by people), `alert_thresholds`
(values saved in the admin that win over the environment's defaults) and `alert_threshold_changes` (every change).
Part of pipeline/models.py, which imports them: kept apart so that neither module grows past 400 lines.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class AlertState(models.TextChoices):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(models.Model):
    """An alert rule's firing; at most one open (firing) alert per rule."""

    id = models.BigAutoField(primary_key=True)
    rule = models.CharField(max_length=64)
    severity = models.CharField(max_length=16)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.FIRING)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    message = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # A person has seen it (pipeline/monitoring/incidents.py): who, when, and what they are doing about it.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledge_note = models.TextField(blank=True, default="", db_default="")
    # No notification about this rule until then (a new incident of the same rule inherits the snooze).
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snoozed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "alerts"
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"], condition=models.Q(state="firing"), name="alerts_one_open_per_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.rule} ({self.state})"


class AlertThreshold(models.Model):
    """A threshold an operator saved in the admin: it wins over the environment's default (settings.<name>)."""

    name = models.CharField(
        max_length=64, primary_key=True, help_text="The setting it overrides, e.g. ALERT_DLQ_DEPTH"
    )
    value = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "alert_thresholds"

    def __str__(self) -> str:
        return f"{self.name} = {self.value:g}"


class AlertThresholdChange(models.Model):
    """Every change of a saved threshold: who, when, the old and the new value (None: the environment's)."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=64)
    old_value = models.FloatField(null=True, blank=True, help_text="Empty: the environment's default applied")
    new_value = models.FloatField(null=True, blank=True, help_text="Empty: back to the environment's default")
    environment_default = models.FloatField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "alert_threshold_changes"
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["name", "-changed_at"], name="alert_threshold_changes_idx")]

    def __str__(self) -> str:
        return f"{self.name}: {self.old_value} → {self.new_value}"
