"""Experiments, their variants and the leads assigned to them. Imported by pipeline/models.py."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    ARCHIVED = "archived"  # stopped, and no longer routing: new leads go to INSTANTLY_CAMPAIGN_ID again


class Experiment(models.Model):
    """Variants of the e-mail campaign (persona, subject, sequence: an Instantly campaign each) tried on the
    daily feed. `sample_size` (leads per variant) is fixed when it starts: the difference is judged at that size
    and not before (no peeking). Stopped, new leads go to `winner`'s campaign until another experiment starts."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=10, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT)
    channel = models.CharField(max_length=8, default="email", editable=False)
    sample_size = models.PositiveIntegerField(help_text="Leads per variant before the difference is judged")
    note = models.TextField(blank=True, default="", help_text="What is being tried, and why")
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    winner = models.ForeignKey(
        "pipeline.ExperimentVariant", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)

    class Meta:
        db_table = "experiments"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ExperimentStatus.values), name="experiments_status"),
            models.CheckConstraint(condition=models.Q(sample_size__gt=0), name="experiments_sample_size_positive"),
            # One experiment splits the feed at a time.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="running"), name="experiments_one_running"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class ExperimentVariant(models.Model):
    id = models.BigAutoField(primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100)
    weight = models.PositiveIntegerField(default=1, help_text="Share of the feed: weight / sum of weights")
    instantly_campaign_id = models.CharField(max_length=100, help_text="The Instantly campaign of this variant")

    class Meta:
        db_table = "experiment_variants"
        ordering = ["experiment_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="experiment_variants_name_uniq"),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="experiment_variants_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.instantly_campaign_id})"


class ExperimentAssignment(models.Model):
    """A fed lead's variant: written by the feeder when it pushes the lead (pipeline/experiments/routing.py)."""

    id = models.BigAutoField(primary_key=True)
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    variant = models.ForeignKey(ExperimentVariant, on_delete=models.CASCADE, related_name="assignments")
    channel = models.CharField(max_length=8, default="email")
    fed_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "experiment_assignments"
        ordering = ["-fed_at"]
        constraints = [
            models.UniqueConstraint(fields=["lead", "experiment"], name="experiment_assignments_lead_uniq"),
        ]
        indexes = [models.Index(fields=["experiment", "variant"], name="experiment_assignments_var_idx")]

    def __str__(self) -> str:
        return f"lead {self.lead_id} -> {self.variant_id}"
